"""Task logs: the batches of lines an engine sends on ``{prefix}/logs/...``, their bounds and
topics (docs/protocol.md, "Task logs").
"""

from ._limits import MAX_LOG_PAYLOAD_BYTES
from ._logs import (
    LOG_LEVELS,
    MAX_LOG_LINE_BYTES,
    DroppedLines,
    LogBatch,
    LogLevel,
    LogLine,
    decode_log_batch,
    level_number,
    logs_filter,
    logs_topic,
)

__all__ = [
    "DroppedLines",
    "LOG_LEVELS",
    "LogBatch",
    "LogLevel",
    "LogLine",
    "MAX_LOG_LINE_BYTES",
    "MAX_LOG_PAYLOAD_BYTES",
    "decode_log_batch",
    "level_number",
    "logs_filter",
    "logs_topic",
]
