"""An MQTT broker inside this process (amqtt, MQTT 3.1.1), for demos and tests."""

from __future__ import annotations

import asyncio
import logging
import socket
import warnings
from types import TracebackType
from typing import Any

from typing_extensions import Self

__all__ = ["EmbeddedBroker"]

_INSTALL_HINT = (
    "the embedded MQTT broker needs amqtt: pip install 'cascade-connector-mqtt[embedded]'"
)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    """An amqtt broker on a free loopback port, in this process's event loop.

    ::

        async with EmbeddedBroker() as broker:
            connector = MqttConnector(broker.host, broker.port)

    It speaks MQTT 3.1.1 only, allows anonymous clients, keeps retained
    messages and sends wills; it never enforces keepalive, so a frozen
    client's will is not sent. amqtt's own logging is turned down to
    warnings while it runs.
    """

    is_mosquitto = False
    supports_mqtt5 = False

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port if port is not None else _free_port(host)
        self._broker: Any = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def running(self) -> bool:
        """Whether the broker is serving."""
        return self._broker is not None

    async def start(self) -> None:
        """Start serving on :attr:`host`:\\ :attr:`port`. Raises ImportError without amqtt."""
        if self._broker is not None:
            return
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                from amqtt.broker import Broker
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = Broker(config)
        broker.stream_connected = self._tracking(broker.stream_connected)
        await broker.start()
        self._broker = broker

    def _tracking(self, accept: Any) -> Any:
        """amqtt's connection handler, wrapped so that every connection is closed in the end.

        amqtt leaves a client's socket open when writing to it fails or is cancelled
        during shutdown (its writer marks itself closed before draining); that socket is
        an unclosed-transport warning once the loop is gone.
        """

        async def stream_connected(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
        ) -> None:
            self._connections.add(writer)
            try:
                await accept(reader, writer, listener_name=listener_name)
            finally:
                self._connections.discard(writer)
                writer.close()

        return stream_connected

    async def stop(self) -> None:
        """Stop serving and disconnect every client. Idempotent."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()
        left, self._connections = self._connections, set()
        for writer in left:
            writer.transport.abort()  # what a frozen client has not read is not waited for
        await asyncio.gather(*(writer.wait_closed() for writer in left), return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"<EmbeddedBroker {self.host}:{self.port} running={self.running}>"
