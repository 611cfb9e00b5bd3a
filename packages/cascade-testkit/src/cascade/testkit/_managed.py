"""The context-manager side every server the tests start shares (brokers, PostgreSQL,
Prometheus): started on entry, closed on exit."""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self

__all__ = ["ManagedProcess"]


class ManagedProcess:
    """``with Server() as server``: :meth:`start` on entry and :meth:`close` on exit.

    A start that fails closes what it had made before the error goes on.
    """

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
