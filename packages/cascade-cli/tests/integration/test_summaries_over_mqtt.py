"""`cascade status --json` reads the engines' retained summaries from a real mosquitto."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import StatusMessage, status_topic
from cascade.interfaces.summaries import EngineSummary, RunTally, TaskTally, summary_topic
from cascade.testkit import MosquittoBroker

_LIVE = {"engine-a": 3, "engine-b": 1, "engine-c": 0}


def _publish_summaries(broker: MosquittoBroker) -> None:
    """Each source's online status and its summary, retained, as an engine publishes them."""

    async def publish() -> None:
        async with MqttConnector(broker.host, broker.port, presence=False) as engine:
            for source, live in _LIVE.items():
                status = StatusMessage(status="online", source=source, session=1)
                await engine.publish(status_topic(source), status, qos=1, retain=True)
                summary = EngineSummary(
                    source=source,
                    runs=RunTally(running=live, succeeded=2),
                    tasks=TaskTally(running=live * 2, pending=5),
                    events_per_s=1.5,
                    more_live=live,  # its live runs, none listed
                )
                await engine.publish(summary_topic(source), summary, qos=0, retain=True)
            await engine.flush(5)

    asyncio.run(publish())


def test_status_json_reports_the_retained_summaries(mosquitto_broker: MosquittoBroker) -> None:
    _publish_summaries(mosquitto_broker)
    address = ["--host", mosquitto_broker.host, "--port", str(mosquitto_broker.port)]
    result = CliRunner().invoke(app, ["status", "--json", *address, "--timeout", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fleet = data["fleet"]
    assert (fleet["engines"], fleet["online"], fleet["without_summary"]) == (3, 3, 0)
    assert (fleet["live_runs"], fleet["runs"]["succeeded"]) == (4, 6)
    assert (fleet["tasks"]["running"], fleet["tasks"]["pending"], fleet["events_per_s"]) == (
        8,
        15,
        4.5,
    )
    live = {e["source"]: e["summary"]["runs"]["running"] for e in data["engines"]}
    assert live == _LIVE
