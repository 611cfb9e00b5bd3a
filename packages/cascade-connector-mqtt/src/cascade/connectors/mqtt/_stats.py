"""The connector's counters: Cascade's ``ConnectorStats``, and what only MQTT has."""

from __future__ import annotations

from dataclasses import dataclass

from cascade.interfaces import ConnectorStats

__all__ = ["MqttConnectorStats"]


@dataclass(slots=True)
class MqttConnectorStats(ConnectorStats):
    """:class:`~cascade.interfaces.ConnectorStats`, and what a connection to an MQTT broker adds.

    ``subscriptions_given_up``: filters no longer subscribed at the broker because
    it closed the connection each time the connector subscribed to them alone
    (RabbitMQ 3.x does so for a filter its topic permissions deny this client).
    Their subscriptions stay, and receive nothing.
    ``subscriptions_refused``: SUBACKs that refused a filter (0x80 or above: an ACL, NATS
    unable to create its consumer); each refused filter is subscribed again with backoff
    on the same connection until granted, and its subscribers' snapshot ends only then.
    ``subscriptions_cut``: SUBSCRIBEs whose connection went before the broker answered them
    (RabbitMQ 3.x closes the connection on a filter its topic permissions deny this client;
    a network fault looks the same): a reader that counts one may not see what it asked for.
    ``bridged``: messages sent through the standby connection (``standby=True``) while no
    connection was served, counted in ``published`` too.
    """

    subscriptions_given_up: int = 0
    subscriptions_refused: int = 0
    subscriptions_cut: int = 0
    bridged: int = 0
