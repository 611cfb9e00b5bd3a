"""The constraints index: its format, its reader and its writer, for tools that set constraints
on brokers that send retained messages to exact-topic subscriptions only (RabbitMQ 3.x).

Workflow authors and readers of the fleet never need it: `cascade pause/limit/resume`, the
dashboard and the engines use it through their connector (``Connector.index_constraints``
and ``Connector.subscribe_constraints``, which call :func:`update_constraints_index` and
:func:`read_indexed_constraints` where the broker needs the index). A third-party writer of
constraints uses this module to keep the index as Cascade's writers do (docs/protocol.md,
"Brokers that send retained messages to exact topics only"): 16 retained shards of
newest-entry-wins records, and the single record earlier versions kept, read and never
written.
"""

from ._constraints_index import (
    MAX_INDEX_BYTES,
    MAX_INDEXED_TOPICS,
    IndexSnapshot,
    constraints_index_topic,
    decode_constraints_index,
    encode_constraints_index,
    read_index,
    read_indexed_constraints,
)
from ._index_shards import (
    INDEX_SHARDS,
    PRUNE_AFTER,
    IndexRecord,
    Records,
    constraints_shard_topic,
    decode_index_shard,
    encode_index_shard,
    merge_records,
    prune_records,
    shard_of,
)
from ._index_writer import (
    INDEX_ATTEMPTS,
    SETTLE,
    IndexNotHeldError,
    update_constraints_index,
)

__all__ = [
    "INDEX_ATTEMPTS",
    "INDEX_SHARDS",
    "MAX_INDEXED_TOPICS",
    "MAX_INDEX_BYTES",
    "PRUNE_AFTER",
    "SETTLE",
    "IndexNotHeldError",
    "IndexRecord",
    "IndexSnapshot",
    "Records",
    "constraints_index_topic",
    "constraints_shard_topic",
    "decode_constraints_index",
    "decode_index_shard",
    "encode_constraints_index",
    "encode_index_shard",
    "merge_records",
    "prune_records",
    "read_index",
    "read_indexed_constraints",
    "shard_of",
    "update_constraints_index",
]
