"""Whether a broker accepts MQTT now: one CONNECT on a raw socket, for readiness checks."""

from __future__ import annotations

import socket

__all__ = ["mqtt_accepts"]

_CONNACK_ACCEPTED = b"\x20\x02\x00\x00"
_DISCONNECT = b"\xe0\x00"


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def _connect_packet(client_id: str, login: tuple[str, str] | None) -> bytes:
    """A minimal MQTT 3.1.1 CONNECT: clean session, keepalive 10 s, ``client_id``, and the
    username and password of ``login`` if given."""
    flags, payload = 0x02, _string(client_id)
    if login is not None:
        flags |= 0xC0
        payload += _string(login[0]) + _string(login[1])
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x0a" + payload
    length, remaining = bytearray(), len(body)
    while True:  # the remaining length, 7 bits a byte
        remaining, byte = divmod(remaining, 128)
        length.append(byte | 0x80 if remaining else byte)
        if not remaining:
            break
    return b"\x10" + bytes(length) + body


def mqtt_accepts(
    port: int,
    *,
    client_id: str = "cascade-ready-probe",
    timeout: float = 2.0,
    login: tuple[str, str] | None = None,
) -> bool:
    """Whether an MQTT CONNECT to 127.0.0.1:``port`` is accepted now (CONNACK 0), as
    ``login`` (username, password) if given."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(_connect_packet(client_id, login))
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
