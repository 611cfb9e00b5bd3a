"""What the link relies on in aiomqtt and paho beyond their public API, checked at run time."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["FAST_PATH_VARIABLE", "bulk_read_supported", "check_aiomqtt", "fast_wire_supported"]

FAST_PATH_VARIABLE = "CASCADE_MQTT_FAST_PATH"

# What the link needs beyond aiomqtt's and paho's public API, whatever the fast path: closing a
# connection whatever its state, failing an attempt the broker hung up on, reading messages as
# received, registering the socket's writer only while the socket is the client's. Instance
# attributes, checked on throwaway objects before connecting.
_AIOMQTT_NAMES = ("_client", "_connected", "_disconnected", "_misc_task", "_lock")
_PAHO_NAMES = ("_reset_sockets", "_ssl_context", "_sock")
_MESSAGE_NAMES = ("_topic",)
_aiomqtt_checked: list[str] = []  # the missing names, once checked in this process


def check_aiomqtt() -> None:
    """Raise ``RuntimeError`` naming what is missing if aiomqtt or paho lack what we rely on.

    One throwaway client (no connection) and message are made once per
    process. Called by ``connect()``: a future aiomqtt or paho that renamed
    one fails there with this message, not with an ``AttributeError`` in a
    background task.
    """
    import aiomqtt
    from aiomqtt.client import Client  # the installed class, whatever stands in for aiomqtt.Client
    from paho.mqtt.client import MQTTMessage

    if not _aiomqtt_checked:
        probe = Client("localhost")
        missing = [n for n in _AIOMQTT_NAMES if not hasattr(probe, n)]
        paho = getattr(probe, "_client", None)
        missing += [f"paho {n}" for n in _PAHO_NAMES if not hasattr(paho, n)]
        missing += [
            f"paho MQTTMessage.{n}" for n in _MESSAGE_NAMES if not hasattr(MQTTMessage(), n)
        ]
        _aiomqtt_checked.append(",".join(missing))
    if _aiomqtt_checked[0]:
        raise RuntimeError(
            f"aiomqtt {getattr(aiomqtt, '__version__', '?')} or its paho-mqtt lacks "
            f"{_aiomqtt_checked[0]}, which MqttConnector relies on; install the versions "
            "cascade-connector-mqtt pins (pip install 'cascade-connector-mqtt' resolves them)"
        )


def fast_wire_supported(paho: Any) -> bool:
    """Whether this paho has the private parts the sender's fast path relies on.

    The fast path encodes PUBLISH packets itself and queues them through
    paho 2.x internals; with a paho that lacks any of them, every message goes
    through paho's public ``publish()`` instead: slower, same behaviour.
    ``CASCADE_MQTT_FAST_PATH=off`` in the environment chooses that way too
    (the tests run both ways; and a way out, should a paho release break it).
    """
    names = ("_packet_queue", "_mid_generate", "_handle_pubackcomp", "_in_packet", "_out_messages")
    return _fast_path_on() and all(hasattr(paho, name) for name in names)


def bulk_read_supported(paho: Any) -> bool:
    """Whether this paho has the private parts the bulk reader (``_reader.py``) relies on.

    Without them, or with the fast path off (``CASCADE_MQTT_FAST_PATH=off``), the
    socket is read by aiomqtt's reader through paho's ``loop_read()``: slower, same messages.
    """
    names = (
        "_in_packet",
        "_packet_handle",
        "_loop_rc_handle",
        "_msgtime_mutex",
        "_call_socket_register_write",
    )
    # what paho's keepalive reads of the last arrival: _last_msg_in before paho 2.1.x
    arrival = hasattr(paho, "_last_bytes_received") or hasattr(paho, "_last_msg_in")
    return _fast_path_on() and arrival and all(hasattr(paho, name) for name in names)


def _fast_path_on() -> bool:
    return os.environ.get(FAST_PATH_VARIABLE, "on").lower() not in ("0", "off", "false", "no")
