"""Task logs: the batches of lines an engine sends on ``{prefix}/logs/...``, their bounds and
topics (docs/protocol.md, "Task logs").
"""

from ._logs import (
    DroppedLines,
    LogBatch,
    LogLine,
    decode_log_batch,
    logs_filter,
    logs_topic,
)

__all__ = [
    "DroppedLines",
    "LogBatch",
    "LogLine",
    "decode_log_batch",
    "logs_filter",
    "logs_topic",
]
