"""`--param NAME=VALUE`: a served workflow's parameters as the command line gives them."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ...plumbing._context import UsageError

__all__ = ["Params", "parsed_params"]

Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="NAME=VALUE",
        help="A parameter of the workflow (repeat for each): VALUE is read as JSON when it "
        'is JSON (5, true, null, [1, 2], "5"), else taken as text (mon, 2026-11-25). The '
        "server converts it to the parameter's type (`cascade served` shows it) and refuses "
        "what does not fit: text is no number, and a number no text (quote it: "
        """'tag="123"').""",
    ),
]


def parsed_params(given: list[str] | None) -> dict[str, Any]:
    """``--param`` values by name; :class:`UsageError` for one without ``=`` or a name, or a
    name given twice."""
    params: dict[str, Any] = {}
    for item in given or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--param takes NAME=VALUE, not {item!r}")
        if name in params:
            raise UsageError(f"--param {name} is given twice")
        try:
            params[name] = json.loads(text)
        except ValueError:
            params[name] = text
    return params
