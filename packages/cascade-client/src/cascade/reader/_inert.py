"""Text from the broker made inert and bounded before anyone sees it.

Every engine, and anyone else with publish rights on the broker, chooses the
task names, errors, reasons, scopes and sources a view shows. Shown as sent, an
escape sequence in them would drive the operator's terminal (clear it, retitle
it, plant a hyperlink), and a 20 MB name would make every redraw slow. So a
reader keeps at most ``KEPT`` characters of a field (``truncate``, both of
:mod:`cascade.reader`), and :func:`inert` turns every character that a
terminal acts on into its visible escape (``\\x1b``) and bounds the length again for
the screen.
"""

from __future__ import annotations

import re

from ._bounded_text import MARK

__all__ = ["SHOWN", "inert"]

SHOWN = {"name": 120, "error": 300, "reason": 200, "scope": 200, "source": 128, "params": 200}
"""Characters a terminal view shows of each field, before ``MARK``."""

# C0 and C1 controls and DEL (ESC-introduced and 8-bit sequences start with one of them),
# the bidirectional overrides and invisible formatting that make text read other than it is,
# and lone surrogates (no terminal encoding can carry them).
_ACTIVE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ud800-\udfff]"
)


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: str, limit: int) -> str:
    """``text`` safe for a terminal: control characters escaped, at most ``limit`` characters
    (then ``MARK``)."""
    shown = _ACTIVE.sub(_escaped, text[:limit])
    if len(shown) > limit or len(text) > limit:
        return shown[:limit] + MARK
    return shown
