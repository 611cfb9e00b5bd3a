"""What the terminal shows: the views of `watch` and `status`, their JSON, tables fitted to a
narrow terminal, times, and what holds a task as `cascade why` says it. Views render a
:class:`~cascade.reader.ReaderModel` and never read messages themselves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fleet_render import render_fleet
    from ._holds_text import (
        NOTHING_HOLDS,
        holds_text,
        recorded_holds_brief,
    )
    from ._plural import counted
    from ._render import (
        engines_table,
        render_status,
        render_watch,
    )
    from ._status_json import status_json
    from ._times import TimeFormat

__all__ = [
    "NOTHING_HOLDS",
    "TimeFormat",
    "counted",
    "engines_table",
    "holds_text",
    "recorded_holds_brief",
    "render_fleet",
    "render_status",
    "render_watch",
    "status_json",
]

# Where each name is defined: a name is imported from its module when first used (PEP 562),
# so that whoever needs one name does not pay for all of them (a command's start).
_HOMES = {
    "render_fleet": "._fleet_render",
    "NOTHING_HOLDS": "._holds_text",
    "holds_text": "._holds_text",
    "recorded_holds_brief": "._holds_text",
    "counted": "._plural",
    "engines_table": "._render",
    "render_status": "._render",
    "render_watch": "._render",
    "status_json": "._status_json",
    "TimeFormat": "._times",
}


def __getattr__(name: str) -> Any:
    """Each public name, from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __package__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, those not imported yet included."""
    return sorted({*globals(), *__all__})
