"""How much a provider reads or makes from input that may be hostile (a served param, an
answer, a file, a signal): each bound has a default and the keyword that changes it, and
going past one fails the task with :class:`BoundExceeded`, which names both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import CascadeRuntimeError

__all__ = [
    "MAX_HTTP_BODY_BYTES",
    "MAX_READ_BYTES",
    "MAX_RENDERED_CHARS",
    "MAX_YAML_BYTES",
    "MAX_YAML_NODES",
    "BoundExceeded",
    "check_bound",
    "read_within",
]

MAX_RENDERED_CHARS = 1_000_000
"""Characters ``cs.format`` and ``cs.template`` render at most (``max_length=``); also the
largest width, precision or repetition one of their fields or expressions may ask for."""

MAX_YAML_BYTES = 16 * 1024 * 1024
"""Bytes of a file ``cs.load_yaml`` reads at most (``max_bytes=``)."""

MAX_YAML_NODES = 1_000_000
"""Nodes a document ``cs.load_yaml`` parses may have, each alias counted as the nodes it
stands for (``max_nodes=``): a few bytes of nested aliases cannot become gigabytes."""

MAX_HTTP_BODY_BYTES = 16 * 1024 * 1024
"""Bytes of an answer's body ``cs.http`` reads at most, after decoding gzip or deflate
(``max_body=``; ``to_file=`` streams a body to a file instead of holding it)."""

MAX_READ_BYTES = 16 * 1024 * 1024
"""Bytes of a file or an S3 object ``cs.read.*``, ``cs.io.local.read_*`` and
``cs.io.s3.read_*`` read at most (``max_bytes=``): no more is read, past it or not."""


class BoundExceeded(CascadeRuntimeError, ValueError):
    """A provider's input or output past its bound: ``provider``, ``what``, ``limit`` and
    ``option`` (the keyword that raises it)."""

    def __init__(self, provider: str, what: str, limit: int, option: str) -> None:
        super().__init__(
            f"cs.{provider}: {what} is past its bound of {limit:,} "
            f"({option}= in the workflow's code raises it)"
        )
        self.provider = provider
        self.what = what
        self.limit = limit
        self.option = option

    def __reduce__(self) -> tuple[Any, ...]:  # crosses from worker processes whole
        return (type(self), (self.provider, self.what, self.limit, self.option))


def read_within(read: Callable[[int], bytes], limit: int | None, provider: str, what: str) -> bytes:
    """What ``read(n)`` gives, asked for one byte more than ``limit`` (``-1``: all, where
    ``limit`` is ``None``): :class:`BoundExceeded` if it gave more, naming ``max_bytes=``."""
    data = read(-1 if limit is None else limit + 1)
    check_bound(len(data), limit, provider, what, "max_bytes")
    return data


def check_bound(amount: int, limit: int | None, provider: str, what: str, option: str) -> None:
    """:class:`BoundExceeded` if ``amount`` is past ``limit`` (``None``: no bound)."""
    if limit is not None and amount > limit:
        raise BoundExceeded(provider, what, limit, option)
