"""Broker options shared by every command, and the connector made from them."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cascade.interfaces import Connector

__all__ = ["BrokerOptions", "ConnectorFactory", "mqtt_connector"]


@dataclass(frozen=True)
class BrokerOptions:
    """Where the broker is and how to log in; ``host=None`` means localhost (or, for
    ``demo``, an embedded broker)."""

    host: str | None = None
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    timeout: float = 5.0

    @property
    def address(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host or 'localhost'}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``--tls`` / ``--ca-file``, or ``None`` for plain TCP."""
        if not (self.tls or self.ca_file):
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


ConnectorFactory = Callable[[BrokerOptions], Connector]


def mqtt_connector(options: BrokerOptions) -> Connector:
    """An MqttConnector for a CLI: no presence of its own, failing fast on connect."""
    from cascade.connectors.mqtt import MqttConnector

    return MqttConnector(
        hostname=options.host or "localhost",
        port=options.port,
        username=options.username,
        password=options.password,
        tls=options.ssl_context() or False,
        connect_timeout=options.timeout,
        flush_timeout=options.timeout,
        presence=False,
    )
