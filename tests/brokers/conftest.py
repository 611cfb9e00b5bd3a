"""A private broker of each family for the session; the capability table printed at its end.

NATS is one :class:`NatsNode` (JetStream, MQTT streams with one replica): the probes
measure what its MQTT listener does, which a three-node cluster does alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from cascade.testkit import (
    NO_MOSQUITTO,
    NO_NATS,
    NO_RABBITMQ,
    BrokerEndpoint,
    MosquittoBroker,
    NatsNode,
    RabbitMQBroker,
    mosquitto_path,
    nats_server_path,
    rabbitmq_server_path,
)

Started = MosquittoBroker | RabbitMQBroker | NatsNode

pytestmark = pytest.mark.integration

# (capability, family) -> what was measured, filled in by the tests
MEASURED: dict[tuple[str, str], str] = {}
# (row, "A -> A" or "A -> B") -> what was measured on the two-node cluster (test_cluster.py)
CLUSTER_MEASURED: dict[tuple[str, str], str] = {}
# the cluster's version, boot and join times, and pause latencies, as its tests found them
CLUSTER: dict[str, str] = {}
_VERSIONS: dict[str, str] = {}


class Brokers:
    """The session's brokers, each started the first time a test asks for its family."""

    def __init__(self) -> None:
        self._started: dict[str, Started] = {}

    def get(self, family: str) -> BrokerEndpoint:
        if family not in self._started:
            if family == "mosquitto":
                if mosquitto_path() is None:
                    pytest.skip(NO_MOSQUITTO)
                broker: Started = MosquittoBroker()
            elif family == "nats":
                if nats_server_path() is None:
                    pytest.skip(NO_NATS)
                broker = NatsNode()
            else:
                if rabbitmq_server_path() is None:
                    pytest.skip(NO_RABBITMQ)
                broker = RabbitMQBroker()
            broker.start()
            self._started[family] = broker
            _VERSIONS[family] = _version(broker)
        return self._started[family]

    def close(self) -> None:
        for broker in self._started.values():
            broker.close()


def _version(broker: Started) -> str:
    if isinstance(broker, RabbitMQBroker):
        return broker.version or "RabbitMQ"
    if isinstance(broker, NatsNode):
        found = re.search(r"Version:\s+(\S+)", broker.log_text())
        return f"NATS {found.group(1)}" if found else "NATS"
    found = re.search(r"mosquitto version (\S+)", broker.log_text())
    return f"mosquitto {found.group(1)}" if found else "mosquitto"


@pytest.fixture(scope="session")
def brokers() -> Iterator[Brokers]:
    """Private brokers by family, shared by the session."""
    started = Brokers()
    yield started
    started.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:  # pragma: no cover - pytest plumbing
    """Print what each family, and the RabbitMQ cluster, was measured to do, as tables."""
    if MEASURED:
        families = sorted({family for _, family in MEASURED})
        header = ["capability", *(f"{f} ({_VERSIONS.get(f, '?')})" for f in families)]
        terminalreporter.section("broker capabilities (measured)")
        _table(terminalreporter, header, families, MEASURED)
    if CLUSTER_MEASURED:
        where = ["A -> A", "A -> B"]
        terminalreporter.section("RabbitMQ cluster (measured)")
        terminalreporter.write_line(
            f"{CLUSTER.get('version', 'RabbitMQ')}, two nodes on loopback: booted in "
            f"{CLUSTER.get('boot', '?')}, joined in {CLUSTER.get('join', '?')}"
        )
        same, across = (CLUSTER.get(f"pause {w}", "?") for w in where)
        terminalreporter.write_line(
            f"`cascade pause` applied by a running engine {same} (A -> A), {across} (A -> B)"
            " after the command started (polled every 10 ms)"
        )
        _table(terminalreporter, ["", *where], where, CLUSTER_MEASURED)


def _table(
    terminalreporter: Any,
    header: list[str],
    columns: list[str],
    measured: dict[tuple[str, str], str],
) -> None:  # pragma: no cover - pytest plumbing
    row_names = list(dict.fromkeys(row for row, _ in measured))
    rows = [(r, *(measured.get((r, c), "-") for c in columns)) for r in row_names]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    write = terminalreporter.write_line
    write("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    write("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        write("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
