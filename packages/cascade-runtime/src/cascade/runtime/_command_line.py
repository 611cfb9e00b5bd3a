"""``create_cli``: a command line for a workflow, an option for each of its ``Param`` s."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._run_life import prepare
from ._run_now import run

__all__ = ["create_cli"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise argparse.ArgumentTypeError(f"{text!r} is no boolean (true/false, yes/no, 1/0)")


def _json_or_text(text: str) -> Any:
    """A value of a type no option spells: JSON (a list, an object, a number), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _converter(kind: Any) -> Callable[[str], Any]:
    if kind is bool:
        return _boolean
    if kind in (int, float, str):
        return kind  # type: ignore[no-any-return]
    return _json_or_text


def create_cli(target: Any, **engine_options: Any) -> Callable[[Sequence[str] | None], Any]:
    """A command line for ``target`` (the Cascade engine's ``cs.create_cli``): call what it
    returns (``cli()``, or ``cli(["--name", "x"])``) and it reads an option ``--NAME`` for each
    :class:`~cascade.runtime.Param` of the workflow (its type, default and description in
    ``--help``; a param without a default is required), runs ``target`` with them
    (:func:`~cascade.runtime.run`, with ``engine_options``), prints its result unless it is
    ``None``, and returns it. ``--log-level`` sets the level of Cascade's own log lines.
    A bad option exits 2 with argparse's usage line, before anything runs."""
    prepared = prepare(target, check=False)  # built once: its params read, then run
    params = prepared.graph.params

    def main(argv: Sequence[str] | None = None) -> Any:
        parser = argparse.ArgumentParser(description="Runs the Cascade workflow.")
        parser.add_argument(
            "--log-level",
            default=None,
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            help="the level of Cascade's own log lines",
        )
        for name, param in params.items():
            kind = "value" if param.type is None else getattr(param.type, "__name__", "value")
            said = f" (default: {param.default!r})" if not param.required else ""
            parser.add_argument(
                f"--{name}",
                dest=f"param_{name}",
                type=_converter(param.type),
                required=param.required,
                default=None,
                metavar=kind.upper(),
                help=(param.description or name) + said,
            )
        options = parser.parse_args(argv)
        if options.log_level is not None:
            logging.getLogger("cascade").setLevel(options.log_level)
        given = {
            name: value
            for name in params
            if (value := getattr(options, f"param_{name}")) is not None
        }
        result = run(prepared, params=given, **engine_options)  # the graph built above
        if result is not None:
            print(result)
        return result

    return main
