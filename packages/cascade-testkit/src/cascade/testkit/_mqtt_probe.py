"""Whether a broker accepts MQTT now: one CONNECT on a raw socket, for readiness checks."""

from __future__ import annotations

import socket

__all__ = ["mqtt_accepts"]

_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
_DISCONNECT = b"\xe0\x00"


def _connect_packet(client_id: bytes) -> bytes:
    """A minimal MQTT 3.1.1 CONNECT: clean session, keepalive 10 s, ``client_id``."""
    return (
        bytes([0x10, 10 + 2 + len(client_id)])
        + b"\x00\x04MQTT\x04\x02\x00\x0a"
        + len(client_id).to_bytes(2, "big")
        + client_id
    )


def mqtt_accepts(
    port: int, *, client_id: str = "cascade-ready-probe", timeout: float = 2.0
) -> bool:
    """Whether an MQTT CONNECT to 127.0.0.1:``port`` is accepted now (CONNACK 0)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(_connect_packet(client_id.encode()))
            answer = b""
            while len(answer) < len(_CONNACK_ACCEPTED):
                chunk = sock.recv(len(_CONNACK_ACCEPTED) - len(answer))
                if not chunk:
                    return False
                answer += chunk
            if answer != _CONNACK_ACCEPTED:
                return False
            sock.sendall(_DISCONNECT)
            return True
    except OSError:
        return False
