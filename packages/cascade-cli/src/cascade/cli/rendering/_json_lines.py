"""`cascade watch --json`'s output: one ASCII JSON line per message, written in batches."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from typing import IO, Any

from cascade.interfaces import Message

__all__ = ["JsonLines"]

_BATCH = 256
# What a payload must not hold to be written as received: anything but printable ASCII.
_NOT_PRINTABLE_ASCII = re.compile(rb"[^\x20-\x7e]")


@functools.lru_cache(maxsize=4096)
def _head(topic: str, retain: bool) -> str:
    return f'{{"topic": {json.dumps(topic)}, "retain": {"true" if retain else "false"}, "payload": '


class JsonLines:
    """Writes ``{"topic": ..., "retain": ..., "payload": {...}}`` lines to ``out``.

    Every control character, C1 and lone surrogate is escaped (ASCII JSON): a
    payload that is printable ASCII already (the usual case: it was decoded as a
    JSON object, so it is valid JSON) is written as received, any other is
    encoded again. Lines are written a batch at a time, at the latest on the
    event loop's next turn, so a fast stream costs one write per batch.
    """

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._pending: list[str] = []
        self._scheduled = False

    def add(self, message: Message) -> None:
        """Queue the line of ``message``."""
        raw = message.raw
        if raw and not _NOT_PRINTABLE_ASCII.search(raw):
            line = _head(message.topic, message.retain) + raw.decode("ascii") + "}\n"
        else:
            whole = {"topic": message.topic, "retain": message.retain, "payload": message.payload}
            line = json.dumps(whole) + "\n"
        self._queue(line)

    def _queue(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= _BATCH:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def note(self, said: dict[str, Any]) -> None:
        """Queue a line of this view's own (``{"mode": ...}``), among the messages' lines."""
        self._queue(json.dumps(said) + "\n")

    def flush(self) -> None:
        """Write what is queued."""
        self._scheduled = False
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self._out.write(text)
