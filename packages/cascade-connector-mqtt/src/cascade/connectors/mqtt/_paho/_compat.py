"""What the link relies on in aiomqtt and paho beyond their public API, checked at run time."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["FAST_PATH_VARIABLE", "check_aiomqtt", "fast_wire_supported"]

FAST_PATH_VARIABLE = "CASCADE_MQTT_FAST_PATH"

# What the connector needs of aiomqtt.Client beyond its public API (closing a connection
# whatever its state, failing an attempt the broker hung up on); checked before connecting.
_AIOMQTT_NAMES = ("_client", "_connected", "_disconnected", "_misc_task", "_lock")
_aiomqtt_checked: list[str] = []  # the missing names, once checked in this process


def check_aiomqtt() -> None:
    """Raise ``RuntimeError`` naming what is missing if this aiomqtt lacks what we rely on.

    The names are instance attributes, so one throwaway client (no connection)
    is made once per process. Called by ``connect()``: a future aiomqtt that
    renamed one fails there with this message, not with an ``AttributeError``
    in a background task.
    """
    import aiomqtt
    from aiomqtt.client import Client  # the installed class, whatever stands in for aiomqtt.Client

    if not _aiomqtt_checked:
        probe = Client("localhost")
        _aiomqtt_checked.append(",".join(n for n in _AIOMQTT_NAMES if not hasattr(probe, n)))
    if _aiomqtt_checked[0]:
        raise RuntimeError(
            f"aiomqtt {getattr(aiomqtt, '__version__', '?')} lacks {_aiomqtt_checked[0]}, which "
            "MqttConnector relies on; install the aiomqtt version cascade-connector-mqtt pins "
            "(pip install 'cascade-connector-mqtt' resolves it)"
        )


def fast_wire_supported(paho: Any) -> bool:
    """Whether this paho has the private parts the sender's fast path relies on.

    The fast path encodes PUBLISH packets itself and queues them through
    paho 2.x internals; with a paho that lacks any of them, every message goes
    through paho's public ``publish()`` instead: slower, same behaviour.
    ``CASCADE_MQTT_FAST_PATH=off`` in the environment chooses that way too
    (the tests run both ways; and a way out, should a paho release break it).
    """
    if os.environ.get(FAST_PATH_VARIABLE, "on").lower() in ("0", "off", "false", "no"):
        return False
    names = ("_packet_queue", "_mid_generate", "_handle_pubackcomp", "_in_packet", "_out_messages")
    return all(hasattr(paho, name) for name in names)
