"""Scenario 7: ids and scopes full of separators, wildcards, dots, blanks, NUL and controls:
one topic level each, percent-encoded."""

from __future__ import annotations

from cascade.connector_kit.constraints_index import (
    constraints_index_topic,
    read_indexed_constraints,
)
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Constraint, Message, constraint_from_topic, constraint_topic
from cascade.runtime import Engine, LazyResult, RunStarted, TelemetrySubscriber, task
from cascade.testkit import Inbox, OwnBroker

from .conftest import Figures

SOURCE = "src/+#$\x00\x07\u00e9. *>"
ORG = "org/+#"
PROJECT = "$SYS\x00\n\u00fcml\u00e4ut/x.y"
RUN = "run/#/+\x00\x1b\u65e5"
# what each becomes: every / + # % . * > NUL, blank and control character percent-encoded
# (encode_level), the rest kept
SOURCE_LEVEL = "src%2F%2B%23$%00%07\u00e9%2E%20%2A%3E"
ORG_LEVEL = "org%2F%2B%23"
PROJECT_LEVEL = "$SYS%00%0A\u00fcml\u00e4ut%2Fx%2Ey"
RUN_LEVEL = "run%2F%23%2F%2B%00%1B\u65e5"
# scopes are encoded alike, one level after "task"
SCOPES = {
    "task:a/b": "task/a%2Fb",
    "task:+": "task/%2B",
    "task:#": "task/%23",
    "task:$SYS/x": "task/$SYS%2Fx",
    "task:nul\x00": "task/nul%00",
    "task:bell\x07\x1b": "task/bell%07%1B",
    "task:\u00fcn\u00efc\u00f8d\u00e9": "task/\u00fcn\u00efc\u00f8d\u00e9",
    "task:a.b c>": "task/a%2Eb%20c%3E",
}
# where an unencoded id or scope would have spilled over
NEIGHBOURS = [
    "status/src/#",
    "telemetry/org/#",
    "telemetry/+/$SYS/#",
    "telemetry/+/+/run/#",
    "constraints/task/a/#",
    "constraints/task/$SYS/#",
    "constraints/task/+/+/+/#",  # a scope split in two levels
]


@task
async def probe(engine_box: list[Engine]) -> list[str]:
    return sorted(c.scope for c in engine_box[0].constraints)


async def test_hostile_ids_land_on_one_encoded_topic(
    own_broker: OwnBroker, prefix: str, figures: Figures
) -> None:
    """Run, source, org, project ids and scopes each make exactly one, encoded, topic level."""
    figures.scenario = "7 topic injection"
    broker = own_broker
    observer = MqttConnector(broker.host, broker.port, presence=False, topic_prefix=prefix)
    await observer.connect(require=True)
    everything, neighbours = Inbox(), Inbox()
    await observer.subscribe(f"{prefix}/#", everything)
    for neighbour in NEIGHBOURS:
        await observer.subscribe(f"{prefix}/{neighbour}", neighbours)

    connector = MqttConnector(broker.host, broker.port, topic_prefix=prefix, source_id=SOURCE)
    limits = {
        constraint_topic(s, "concurrency", prefix): Constraint.concurrency(s, 9) for s in SCOPES
    }
    for topic, limit in limits.items():
        await observer.publish(topic, limit, qos=1, retain=True)
    await observer.flush(5)
    # as `cascade limit` does, where the broker needs it
    await observer.index_constraints(put=limits, timeout=5)

    engine = Engine(
        connector, org_id=ORG, project_id=PROJECT, heartbeat_interval=None, max_concurrency=2
    )
    box = [engine]
    target: LazyResult[list[str]] = probe(box)
    scopes = await engine.run(target)

    # a run id of our own through the same telemetry code the engine uses
    async with MqttConnector(
        broker.host, broker.port, topic_prefix=prefix, source_id=SOURCE
    ) as second:
        telemetry = TelemetrySubscriber(
            second, run_id=RUN, org_id=ORG, project_id=PROJECT, heartbeat_interval=None
        )
        telemetry.start()
        telemetry.on_event(RunStarted(run_id=RUN, task_count=0))
        await telemetry.aclose()
        await second.flush(5)

    if connector.capabilities.retained_to_wildcards is False:
        # an engine there reads the indexed topics of its tasks' scopes only: read them all
        read: list[Message] = []
        await read_indexed_constraints(observer, read.append)
        scopes = sorted(constraint_from_topic(m.topic, m.raw, prefix).scope for m in read)

    # a marker published last: everything before it has been delivered
    await observer.publish(f"{prefix}/zz-end", b"{}", qos=1)
    await everything.until(lambda m: m.topic == f"{prefix}/zz-end")
    for scope in SCOPES:
        await observer.publish(constraint_topic(scope, "concurrency", prefix), b"", retain=True)
    await observer.flush(5)
    await observer.disconnect()

    assert scopes == sorted(SCOPES)  # the engine read every scope back as it was sent
    topics = {m.topic for m in everything.all}
    # the connector's own marker messages (subscribe barriers) carry the encoded source too
    markers = {t for t in topics if t.startswith(f"{prefix}/_marker/")}
    assert {t.split("/")[2] for t in markers} == {SOURCE_LEVEL}
    # a connection's marker, or under it the connector's retained-delivery probe or its
    # request to confirm the QoS 0 messages written before it
    assert all(len(t.split("/")) == 4 or t.endswith(("/probe", "/confirm")) for t in markers)
    assert all(len(t.split("/")) == 5 for t in markers if t.endswith(("/probe", "/confirm")))
    topics -= markers
    index = constraints_index_topic(prefix)  # the index and its shards, where the broker needs it
    topics -= {t for t in topics if t == index or t.startswith(f"{index}/")}
    run_ids = {m.payload["run_id"] for m in everything.all if "run_id" in m.payload}
    engine_run = next(r for r in run_ids if r != RUN)
    expected = {
        f"{prefix}/status/{SOURCE_LEVEL}",
        f"{prefix}/summary/{SOURCE_LEVEL}",
        f"{prefix}/summary/{ORG_LEVEL}/{PROJECT_LEVEL}/{SOURCE_LEVEL}",  # its runs, by place
        f"{prefix}/telemetry/{ORG_LEVEL}/{PROJECT_LEVEL}/{engine_run}/events",
        f"{prefix}/telemetry/{ORG_LEVEL}/{PROJECT_LEVEL}/{RUN_LEVEL}/events",
        *(f"{prefix}/constraints/{path}/concurrency" for path in SCOPES.values()),
        f"{prefix}/zz-end",
    }
    assert topics == expected
    assert neighbours.all == []
    for message in everything.all:
        assert "\x00" not in message.topic
    figures.emitted = sum(m.topic in expected for m in everything.all) - 1
    figures.delivered = figures.emitted
    figures.dropped = 0
    figures.notes.append(
        f"{len(expected) - 1} topics, each exactly where expected; "
        f"{len(NEIGHBOURS)} neighbouring filters received nothing"
    )
