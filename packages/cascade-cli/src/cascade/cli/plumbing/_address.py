"""``--host`` as ``host``, ``host:port`` or ``[v6 address]:port``."""

from __future__ import annotations

__all__ = ["is_host", "split_host_port"]


def split_host_port(value: str) -> tuple[str, int | None]:
    """Split ``host:port`` into its parts; ``port`` is ``None`` when not given.

    ``[::1]:1883`` and ``[::1]`` are IPv6 addresses in brackets; a bare address
    with several colons (``::1``) is taken as a host without a port. Raises
    ``ValueError`` with the reason for an empty host or a port that is not a
    number in 1..65535.
    """
    host, port = value, ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ValueError(f"{value!r} opens '[' without closing it")
        host, rest = value[1:end], value[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{value!r} has {rest!r} after the address")
        port = rest[1:] if rest else ""
        if rest == ":":
            raise ValueError(f"{value!r} ends with ':' and no port")
    elif value.count(":") == 1:
        host, port = value.split(":")
        if not port:
            raise ValueError(f"{value!r} ends with ':' and no port")
    if not host:
        raise ValueError(f"{value!r} has no host")
    if not is_host(host):
        raise ValueError(f"{value!r} is not a host name or address")
    if not port:
        return host, None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the port in {value!r} must be a number from 1 to 65535")
    return host, int(port)


def is_host(host: str) -> bool:
    """Whether a resolver can be asked for ``host`` (a name or an address), or would fail deep
    in a connection: a label over 63 characters, bytes that were not UTF-8, controls."""
    try:
        host.encode("ascii" if ":" in host else "idna")  # an IPv6 address, else a name
    except UnicodeError:
        return False
    return host.isprintable()
