"""The broker's nodes: ``hostname``/``port``, or ``hosts=["a:1883", "b"]``, checked once."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Node", "node_name", "nodes_from", "split_node"]

Node = tuple[str, int]
"""One broker node: host name or address, and port."""


def node_name(node: Node) -> str:
    """``host:port``, an IPv6 address in brackets: ``[::1]:1883``."""
    host, port = node
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_node(value: str, default_port: int) -> Node:
    """``host``, ``host:port``, ``[v6 address]`` or ``[v6 address]:port``; else ``ValueError``.

    A bare address with several colons (``::1``) is a host without a port.
    """
    host, port = value.strip(), ""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError(f"host {value!r} opens '[' without closing it")
        host, rest = host[1:end], host[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"host {value!r} has {rest!r} after the address")
        port = rest[1:]
        if rest == ":":
            raise ValueError(f"host {value!r} ends with ':' and no port")
    elif host.count(":") == 1:
        host, port = host.split(":")
        if not port:
            raise ValueError(f"host {value!r} ends with ':' and no port")
    if not host or not host.isprintable() or any(c.isspace() for c in host):
        raise ValueError(f"host {value!r} is not a host name or address")
    if not port:
        return host, default_port
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the port in host {value!r} must be a number from 1 to 65535")
    return host, int(port)


def nodes_from(hostname: str | None, port: int, hosts: Sequence[str] | None) -> tuple[Node, ...]:
    """The nodes to try, in order: ``hostname`` and ``port``, or each of ``hosts``.

    An entry of ``hosts`` without a port gets ``port``. Exactly one of
    ``hostname`` and ``hosts`` is given (``TypeError``); ``hosts`` is a
    non-empty list of strings without repeats (``ValueError``).
    """
    if (hostname is None) == (hosts is None):
        raise TypeError("MqttConnector needs hostname or hosts=[...], and not both")
    if hosts is None:
        assert hostname is not None
        if not hostname:
            raise ValueError("hostname is empty")
        return ((hostname, port),)
    if isinstance(hosts, str) or not all(isinstance(h, str) for h in hosts):
        raise TypeError(f"hosts must be a list of 'host' or 'host:port' strings, not {hosts!r}")
    if not hosts:
        raise ValueError("hosts is empty: name at least one broker node")
    nodes = tuple(split_node(h, port) for h in hosts)
    if len(set(nodes)) != len(nodes):
        raise ValueError(f"hosts names a node twice: {list(hosts)!r}")
    return nodes
