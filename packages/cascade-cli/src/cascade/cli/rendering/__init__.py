"""What the terminal shows: the views of `watch` and `status`, their JSON, tables fitted to a
narrow terminal, times, and what holds a task as `cascade why` says it. Views render a
:class:`~cascade.reader.ReaderModel` and never read messages themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

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

__all__, __getattr__, __dir__ = lazy_exports(__name__)
