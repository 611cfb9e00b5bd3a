"""``--listen HOST:PORT`` (and ``--metrics-listen``): where a server of the CLI listens (the
socket is :func:`cascade.metrics.bind`'s)."""

from __future__ import annotations

from ._address import is_host
from ._context import UsageError

__all__ = ["parse_listen"]


def parse_listen(value: str, option: str = "--listen") -> tuple[str, int]:
    """``127.0.0.1:8787``, ``[::1]:8787``, ``0.0.0.0:80`` or ``localhost:0`` (any free port);
    a :class:`UsageError` naming ``option`` for anything else."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"{option} must be HOST:PORT, e.g. 127.0.0.1:8787, not {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not is_host(host):
        raise UsageError(f"{option}: {host!r} is not a host name or address")
    return host, int(port)
