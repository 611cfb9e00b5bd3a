"""Free loopback ports for the servers the tests start, chosen where the kernel does not look."""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

__all__ = ["free_port"]

# The kernel gives outgoing connections (every client of every test, every route between
# cluster nodes) a local port from this range, and so does bind(("", 0)). A port picked there
# and handed to a server that binds it a moment later can meanwhile be taken by any new
# connection on the machine: a nats-server died of "address already in use" that way in CI.
# So ports are picked below (or above) the range, at random so that parallel test processes
# rarely meet, and never twice in one process.
_EPHEMERAL_FALLBACK = (32768, 60999)
_handed_out: set[int] = set()
_lock = threading.Lock()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _EPHEMERAL_FALLBACK


def _candidates() -> range:
    low, high = _ephemeral_range()
    if low - 1 >= 20000:
        return range(10000, low)
    return range(high + 1, 65536)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the kernel's range
    for outgoing connections, and not handed out before by this process."""
    candidates = _candidates()
    with _lock:
        for _ in range(1000):
            port = random.choice(candidates)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    raise RuntimeError(f"no free loopback port in {candidates.start}-{candidates.stop - 1}")
