"""A deadline for a block of awaits that never swallows a cancellation."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout as bounded
else:  # pragma: no cover - exercised by the 3.10 CI job
    from async_timeout import timeout as bounded

__all__ = ["bounded"]
