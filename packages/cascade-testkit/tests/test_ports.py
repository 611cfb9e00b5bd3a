"""free_port: ports a server can bind, away from the kernel's range for outgoing connections."""

from __future__ import annotations

import socket
from pathlib import Path

from cascade.testkit import free_port


def _ephemeral() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


def test_ports_are_outside_the_range_outgoing_connections_take() -> None:
    ports = [free_port() for _ in range(200)]
    assert not set(ports) & set(_ephemeral())


def test_no_port_is_handed_out_twice() -> None:
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)


def test_a_handed_out_port_can_be_listened_on() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", free_port()))
        server.listen()
