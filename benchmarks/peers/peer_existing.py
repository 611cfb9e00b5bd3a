"""The existing Cascade engine (github.com/doucx/Cascade): ``cs.task``, ``.map`` and
``cs.run``, with no connector or with its MQTT connector; its console log at WARNING."""

from __future__ import annotations

from importlib.metadata import version as distribution_version

import work

import cascade as cs
from cascade.connectors.mqtt import MqttConnector

noop = cs.task(work.noop)
extract = cs.task(work.extract)
clean = cs.task(work.clean)
enrich = cs.task(work.enrich)
load = cs.task(work.load)
burn = cs.task(work.burn)


def run(target, broker):
    connector = None if broker is None else MqttConnector(*broker)
    return cs.run(target, log_level="WARNING", connector=connector)


def noops(n, broker):
    return len(run([noop(i) for i in range(n)], broker))


def etl(n, broker):
    return run(load(enrich.map(row=clean.map(row=extract(n)))), broker)


def cpu(n, broker):
    return len(run([burn(i) for i in range(n)], broker))


WORKLOADS = {"noop": noops, "etl": etl, "cpu": cpu}


def version():
    return f"cascade-engine {distribution_version('cascade-engine')}"
