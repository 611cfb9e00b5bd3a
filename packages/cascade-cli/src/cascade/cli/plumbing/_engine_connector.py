"""An engine's connector for the commands that run one (`cascade serve`, `cascade rerun
--entrypoint`): the broker's options as every command takes them, its presence announced."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._broker import BrokerOptions, tls_of
from ._context import UsageError

if TYPE_CHECKING:
    from cascade.interfaces import Connector

__all__ = ["engine_connector"]


def engine_connector(broker: BrokerOptions, source_id: str | None = None) -> Connector:
    """An engine's connector to ``broker`` (`cascade serve`'s, `cascade rerun --entrypoint`'s):
    its presence announced, as ``source_id`` (``None``: ``<hostname>-<pid>``), on the layout
    ``$CASCADE_SOURCED_TOPICS`` asks for (a value it cannot read is a
    :class:`~._context.UsageError`), waiting for the broker as long as ``--timeout``."""
    from cascade.connector_kit import default_sourced_topics
    from cascade.connectors.mqtt import MqttConnector

    try:
        layout = default_sourced_topics()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return MqttConnector(
        hosts=broker.hosts,
        username=broker.username,
        password=broker.password,
        tls=tls_of(broker),
        connect_timeout=broker.timeout,
        protocol=broker.protocol,
        sourced_topics=layout,
        source_id=source_id,
    )
