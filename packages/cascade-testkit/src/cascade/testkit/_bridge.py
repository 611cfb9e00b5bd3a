"""Two private mosquittos, an edge bridged to a centre: a site's broker and a central one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ._fixtures import NO_MOSQUITTO
from ._managed import ManagedProcess
from ._mosquitto import MosquittoBroker, mosquitto_path

__all__ = ["MosquittoBridge", "mosquitto_bridge"]


def _setter(topic: str, event: threading.Event) -> Callable[..., None]:
    """A paho ``on_message`` that sets ``event`` when a message on ``topic`` arrives."""

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == topic:
            event.set()

    return on_message


class MosquittoBridge(ManagedProcess):
    """A ``centre`` mosquitto and an ``edge`` mosquitto bridged to it.

    The edge's configuration has one bridge ``connection`` to the centre
    with ``topic {topics} both {qos}``: what is published under ``topics`` on
    either broker reaches the other, retained messages included. :meth:`start`
    returns once a message has crossed the bridge both ways.
    """

    def __init__(self, *, topics: str = "cascade/#", qos: int = 1) -> None:
        self.topics = topics
        self.centre = MosquittoBroker()
        self.connection = f"cascade-edge-{uuid.uuid4().hex[:8]}"
        self.edge = MosquittoBroker(
            extra_config="\n".join(
                [
                    f"connection {self.connection}",
                    f"address 127.0.0.1:{self.centre.port}",
                    f"topic {topics} both {qos}",
                    "bridge_protocol_version mqttv311",
                    "cleansession true",
                    "notifications false",
                    "restart_timeout 1",
                ]
            )
        )

    def start(self, timeout: float = 15.0) -> None:
        """Start the centre, then the edge, and wait until the bridge carries messages both ways."""
        self.centre.start()
        self.edge.start()
        self.wait_bridged(timeout)

    def wait_bridged(self, timeout: float = 15.0) -> None:
        """Return once a probe published on each broker has reached the other one."""
        root = self.topics.removesuffix("#").rstrip("/")
        probe = f"{root}/_bridge-probe/{uuid.uuid4().hex[:8]}" if root else "_bridge-probe"
        seen = {"edge": threading.Event(), "centre": threading.Event()}
        clients: list[mqtt.Client] = []
        try:
            for name, broker in (("edge", self.edge), ("centre", self.centre)):
                client = mqtt.Client(CallbackAPIVersion.VERSION2)
                # the other broker's probe: "down" arrives at the edge, "up" at the centre
                wanted = f"{probe}/{'down' if name == 'edge' else 'up'}"
                client.on_message = _setter(wanted, seen[name])
                client.connect(broker.host, broker.port)
                client.subscribe(f"{probe}/#", qos=1)
                client.loop_start()
                clients.append(client)
            edge_client, centre_client = clients
            deadline = time.monotonic() + timeout
            while not all(event.is_set() for event in seen.values()):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the bridge did not carry messages in {timeout} s:\n{self.edge.log_text()}"
                    )
                # probes sent before the bridge is up are lost: send again until they cross
                centre_client.publish(f"{probe}/down", b"", qos=1)
                edge_client.publish(f"{probe}/up", b"", qos=1)
                seen["edge"].wait(0.1)
                seen["centre"].wait(0.1)
        finally:
            for client in clients:
                client.disconnect()
                client.loop_stop()

    def close(self) -> None:
        """Stop both brokers and delete their files."""
        self.edge.close()
        self.centre.close()

    def __repr__(self) -> str:
        return f"<MosquittoBridge edge={self.edge.port} -> centre={self.centre.port}>"


@pytest.fixture
def mosquitto_bridge() -> Iterator[MosquittoBridge]:
    """An edge mosquitto bridged to a centre (``cascade/# both 1``); skipped without mosquitto."""
    if mosquitto_path() is None:
        pytest.skip(NO_MOSQUITTO)
    with MosquittoBridge() as bridge:
        yield bridge
