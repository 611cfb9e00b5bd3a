"""What a writer of constraints leaves said beside them: who cleared one and why (a clear
note), who issued what (an issued note); the history's audit reads them (docs/protocol.md,
"Who may write constraints").
"""

from ._cleared import (
    ClearNote,
    cleared_filter,
    cleared_topic,
    decode_clear_note,
)
from ._issued import (
    IssuedNote,
    decode_issued_note,
    issued_filter,
    issued_topic,
)

__all__ = [
    "ClearNote",
    "IssuedNote",
    "cleared_filter",
    "cleared_topic",
    "decode_clear_note",
    "decode_issued_note",
    "issued_filter",
    "issued_topic",
]
