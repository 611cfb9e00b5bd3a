"""``MqttConnector``'s options, checked once: endpoint, credentials, TLS, ids, limits, timeouts."""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cascade.connector_kit import default_source_id, default_sourced_topics
from cascade.interfaces import validate_id, validate_prefix

from ._hosts import Node, nodes_from
from ._link import LinkSettings

__all__ = [
    "ACKED_WINDOW",
    "MAX_SESSION_EXPIRY",
    "ConnectorOptions",
    "mqtt5_from",
]

ACKED_WINDOW = 100  # QoS 1/2 messages in paho at once (measured best; paho is O(n) per PUBACK)
_MANAGED_OPTIONS = frozenset({"will", "timeout", "hostname", "port", "logger"})
_RENAMED_OPTIONS = {"identifier": "client_id", "tls_context": "tls"}  # aiomqtt's: ours
_SESSION_OPTIONS = frozenset({"clean_session", "clean_start"})  # session_expiry sets them
MAX_SESSION_EXPIRY = 0xFFFFFFFF  # MQTT 5's largest Session Expiry Interval: never expires
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
    """What ``MqttConnector(...)`` was given (see its docstring), checked when made.

    Raises ``ValueError`` or ``TypeError`` naming the option that is wrong. The
    fields after ``client_options`` are derived: the MQTT version, the TLS
    context, the broker's nodes in order, and the sanitized source id and prefix.
    """

    hostname: str | None
    port: int
    hosts: Sequence[str] | None
    username: str | None
    password: str | None = field(repr=False)
    tls: bool | ssl.SSLContext
    tls_ca_file: str | None
    keepalive: int
    protocol: object
    client_id: str | None
    session_expiry: float | None
    topic_prefix: str
    source_id: str | None
    presence: bool
    buffer_size: int
    max_in_flight: int
    receive_buffer: int
    backoff_initial: float
    backoff_max: float
    connect_timeout: float
    flush_timeout: float
    client_options: Mapping[str, Any]
    standby: bool = False
    sourced_topics: bool | None = None
    mqtt5: bool = field(init=False)
    tls_context: ssl.SSLContext | None = field(init=False, repr=False)
    nodes: tuple[Node, ...] = field(init=False)
    source: str = field(init=False)
    prefix: str = field(init=False)
    sourced: bool = field(init=False)

    def __post_init__(self) -> None:
        managed = _MANAGED_OPTIONS & self.client_options.keys()
        if managed:
            raise TypeError(f"MqttConnector sets these aiomqtt options itself: {sorted(managed)}")
        for theirs, ours in _RENAMED_OPTIONS.items():
            if theirs in self.client_options:
                raise TypeError(f"aiomqtt's {theirs}= is MqttConnector's {ours}=")
        if self.session_expiry is not None:
            if not self.client_id:
                raise ValueError("session_expiry needs a client_id: the broker keeps its session")
            if not 0 <= self.session_expiry <= MAX_SESSION_EXPIRY:
                raise ValueError(f"session_expiry must be from 0 to {MAX_SESSION_EXPIRY} seconds")
            chosen = _SESSION_OPTIONS & self.client_options.keys()
            if chosen:
                raise TypeError(
                    f"session_expiry sets these aiomqtt options itself: {sorted(chosen)}"
                )
        if self.connect_timeout <= 0 or self.flush_timeout < 0:
            raise ValueError("timeouts must be positive")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.buffer_size < 1:
            raise ValueError("buffer size must be at least 1")
        if self.receive_buffer < 1:
            raise ValueError("receive_buffer must be at least 1 byte")
        if self.backoff_initial <= 0 or self.backoff_max < self.backoff_initial:
            raise ValueError("backoff needs 0 < initial <= maximum")
        given = self.source_id
        source = validate_id(given, "source_id") if given else default_source_id()
        derived = {
            "nodes": nodes_from(self.hostname, self.port, self.hosts),
            "mqtt5": mqtt5_from(self.protocol),
            "tls_context": _tls_context(self.tls, self.tls_ca_file),
            "source": source,
            "prefix": validate_prefix(self.topic_prefix),
            "sourced": (
                default_sourced_topics() if self.sourced_topics is None else self.sourced_topics
            ),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        if self.standby and len(self.nodes) < 2:
            raise ValueError(
                "standby=True needs several nodes (hosts=[...]): it keeps a second "
                "connection to the next one"
            )

    def link_settings(
        self, node: Node, will: tuple[str, bytes] | None, connect_timeout: float | None = None
    ) -> LinkSettings:
        """The settings of one connection attempt to ``node``, with this session's will.

        ``connect_timeout`` bounds this attempt, if shorter than the connector's.
        """
        bound = self.connect_timeout if connect_timeout is None else connect_timeout
        return LinkSettings(
            hostname=node[0],
            port=node[1],
            client_id=self.client_id,
            session_expiry=None if self.session_expiry is None else int(self.session_expiry),
            mqtt5=self.mqtt5,
            keepalive=self.keepalive,
            connect_timeout=min(self.connect_timeout, bound),
            acked_window=min(self.max_in_flight, ACKED_WINDOW),
            username=self.username,
            password=self.password,
            tls_context=self.tls_context,
            will=will,
            receive_buffer=self.receive_buffer,
            client_options=self.client_options,
        )

    def standby_settings(self, node: Node) -> LinkSettings:
        """The settings of the standby connection to ``node``: no will, a clean session, and
        a client id of its own (``<client_id>-standby`` when one was given)."""
        options = {k: v for k, v in self.client_options.items() if k not in _SESSION_OPTIONS}
        return replace(
            self.link_settings(node, None),
            client_id=None if self.client_id is None else f"{self.client_id}-standby",
            session_expiry=None,
            receive_buffer=64 * 1024,  # it subscribes to nothing
            client_options=options,
        )
