"""``MqttConnector``'s options, checked once: endpoint, credentials, TLS, ids, limits, timeouts."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cascade.interfaces.connector_kit import (
    default_source_id,
    sanitize_segment,
    validate_id,
    validate_prefix,
)

from ._link import LinkSettings

__all__ = ["ACKED_WINDOW", "ConnectorOptions", "mqtt5_from"]

ACKED_WINDOW = 100  # QoS 1/2 messages in paho at once (measured best; paho is O(n) per PUBACK)
_MANAGED_OPTIONS = frozenset({"will", "timeout", "hostname", "port", "logger"})
_VERSIONS = {"3.1.1": False, "311": False, "4": False, "5": True, "5.0": True}


def mqtt5_from(value: object) -> bool:
    """Whether ``protocol`` names MQTT 5 (``"5"``, aiomqtt's V5) or 3.1.1; else ValueError."""
    number = getattr(value, "value", value)  # aiomqtt.ProtocolVersion: 4 or 5
    mqtt5 = _VERSIONS.get(str(number))
    if mqtt5 is None:
        raise ValueError(f"protocol must be '3.1.1' or '5' (MQTT version), not {value!r}")
    return mqtt5


def _tls_context(tls: bool | ssl.SSLContext, tls_ca_file: str | None) -> ssl.SSLContext | None:
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls or tls_ca_file is not None:
        return ssl.create_default_context(cafile=tls_ca_file)
    return None


@dataclass(frozen=True)
class ConnectorOptions:
    """What ``MqttConnector(...)`` was given, validated (see its docstring for each)."""

    hostname: str
    port: int
    source_id: str
    prefix: str
    mqtt5: bool
    identifier: str | None
    username: str | None
    password: str | None = field(repr=False)
    tls_context: ssl.SSLContext | None
    keepalive: int
    presence: bool
    buffer_size: int
    max_in_flight: int
    backoff_initial: float
    backoff_max: float
    connect_timeout: float
    flush_timeout: float
    client_options: Mapping[str, Any]

    @classmethod
    def build(
        cls,
        hostname: str,
        port: int,
        *,
        username: str | None,
        password: str | None,
        tls: bool | ssl.SSLContext,
        tls_ca_file: str | None,
        keepalive: int,
        protocol: object,
        client_id: str | None,
        identifier: str | None,
        topic_prefix: str,
        source_id: str | None,
        presence: bool,
        buffer_size: int,
        max_in_flight: int,
        backoff_initial: float,
        backoff_max: float,
        connect_timeout: float,
        flush_timeout: float,
        client_options: Mapping[str, Any],
    ) -> ConnectorOptions:
        """Validate every option; ``ValueError``/``TypeError`` naming the one that is wrong."""
        managed = _MANAGED_OPTIONS & client_options.keys()
        if managed:
            raise TypeError(f"MqttConnector sets these aiomqtt options itself: {sorted(managed)}")
        if client_id is not None and identifier is not None and client_id != identifier:
            raise ValueError("give client_id or identifier, not two different ids")
        if connect_timeout <= 0 or flush_timeout < 0:
            raise ValueError("timeouts must be positive")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if buffer_size < 1:
            raise ValueError("buffer size must be at least 1")
        if backoff_initial <= 0 or backoff_max < backoff_initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        source = validate_id(source_id, "source_id") if source_id else default_source_id()
        return cls(
            hostname=hostname,
            port=port,
            source_id=sanitize_segment(source),
            prefix=validate_prefix(topic_prefix),
            mqtt5=mqtt5_from(protocol),
            identifier=client_id if client_id is not None else identifier,
            username=username,
            password=password,
            tls_context=_tls_context(tls, tls_ca_file),
            keepalive=keepalive,
            presence=presence,
            buffer_size=buffer_size,
            max_in_flight=max_in_flight,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            connect_timeout=connect_timeout,
            flush_timeout=flush_timeout,
            client_options=dict(client_options),
        )

    def link_settings(self, will: tuple[str, bytes] | None) -> LinkSettings:
        """The settings of one connection attempt, with this session's will."""
        return LinkSettings(
            hostname=self.hostname,
            port=self.port,
            identifier=self.identifier,
            mqtt5=self.mqtt5,
            keepalive=self.keepalive,
            connect_timeout=self.connect_timeout,
            acked_window=min(self.max_in_flight, ACKED_WINDOW),
            username=self.username,
            password=self.password,
            tls_context=self.tls_context,
            will=will,
            client_options=self.client_options,
        )
