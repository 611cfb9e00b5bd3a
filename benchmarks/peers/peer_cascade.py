"""Cascade (this repository's): ``@task``, ``.map`` and ``cascade.runtime.run``, with no
connector or with the MQTT connector to the driver's mosquitto."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version as distribution_version

import work

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import run, task

noop = task(work.noop)
extract = task(work.extract)
clean = task(work.clean)
enrich = task(work.enrich)
load = task(work.load)
burn = task(work.burn)

Broker = tuple[str, int] | None


def connector(broker: Broker) -> MqttConnector | None:
    """A new connector for each run, as a script makes one (``None``: no connector)."""
    return None if broker is None else MqttConnector(*broker)


def noops(n: int, broker: Broker) -> int:
    return len(run([noop(i) for i in range(n)], connector(broker)))


def etl(n: int, broker: Broker) -> int:
    result: int = run(load(enrich.map(row=clean.map(row=extract(n)))), connector(broker))
    return result


def cpu(n: int, broker: Broker) -> int:
    return len(run([burn(i) for i in range(n)], connector(broker)))


WORKLOADS: dict[str, Callable[[int, Broker], int]] = {"noop": noops, "etl": etl, "cpu": cpu}


def version() -> str:
    return f"cascade-runtime {distribution_version('cascade-runtime')}"
