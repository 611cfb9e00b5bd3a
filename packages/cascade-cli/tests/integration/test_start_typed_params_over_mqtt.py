"""Served params typed at the door, end to end on a real broker (mosquitto, or RabbitMQ with
``CASCADE_TEST_BROKER=rabbitmq``): a real engine serves ``nightly(n: int, day: date)``;
`cascade served` shows each param's type and default; `cascade start -p n=5` (JSON: the int
5) starts it with an int and a date; ``"5"``, an object for the date and ``10**18`` are
refused naming the parameter, exit 1, and start nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.connectors.mqtt import MqttConnector
from cascade.interfaces import Message
from cascade.interfaces.serving import served_topic
from cascade.runtime import Engine, Param, RunFinished, task
from cascade.runtime.testing import EventRecorder
from cascade.testkit import BrokerEndpoint


def cascade(broker: BrokerEndpoint, *args: str, columns: int = 80) -> Result:
    """`cascade ARGS` in-process against ``broker``, on a terminal ``columns`` wide."""
    address = ["--host", broker.host, "--port", str(broker.port), "--timeout", "10"]
    wide = {"COLUMNS": str(columns), "TERMINAL_WIDTH": str(columns)}
    return CliRunner().invoke(app, [*args, *address], env=wide)


async def test_start_converts_honest_params_and_refuses_wrong_ones_naming_them(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    given: list[tuple[Any, Any]] = []

    @task(name=f"{scope_name}_count")
    def count(n: int) -> int:
        return n

    def nightly(n: int, day: date = date(2026, 11, 25)) -> Any:
        given.append((n, day))
        return count(n)

    source = f"serve-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=None,
    )
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    announced = asyncio.Event()

    def heard(message: Message) -> None:
        if message.payload:
            announced.set()

    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as listening:
        await listening.subscribe(served_topic("local", "default", source), heard)
        serving = asyncio.create_task(engine.serve({scope_name: nightly}))
        try:
            await asyncio.wait_for(announced.wait(), 15)
            listed = await asyncio.to_thread(cascade, mqtt_broker, "served", "--json")
            assert listed.exit_code == 0, listed.output
            (mine,) = [s for s in json.loads(listed.stdout)["served"] if s["source"] == source]
            assert mine["workflows"][0]["params"] == [
                {"name": "n", "annotation": "int"},
                {"name": "day", "required": False, "default": "2026-11-25", "annotation": "date"},
            ]
            table = await asyncio.to_thread(cascade, mqtt_broker, "served")
            assert "n: int" in table.stdout
            assert "day: date =" in table.stdout  # folded at 80 columns
            assert '"2026-11-25"' in table.stdout

            started = await asyncio.to_thread(
                cascade, mqtt_broker, "start", scope_name, "-p", "n=5", "-p", "day=2026-12-01",
                "--on", source, "--wait",
            )  # fmt: skip
            assert started.exit_code == 0, started.output
            assert given == [(5, date(2026, 12, 1))]

            for param, error in [
                ('n="5"', 'parameter n must be int, not str ("5")'),
                ('day={"$where": "1"}', 'parameter day must be date, not dict ({"$where": "1"})'),
                ("n=1000000000000000000", "parameter n holds 1000000000000000000"),
            ]:
                params = ["-p", param] if param.startswith("n=") else ["-p", "n=1", "-p", param]
                refused = await asyncio.to_thread(
                    cascade, mqtt_broker, "start", scope_name, *params, "--on", source
                )
                assert refused.exit_code == 1, refused.output
                assert f"{scope_name}: {error}" in refused.output, refused.output
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
    assert len(given) == 1  # the refused requests never reached the function
    assert len(recorder.names(RunFinished)) == 1


async def test_served_shows_each_params_type_default_and_description(
    mqtt_broker: BrokerEndpoint, scope_name: str
) -> None:
    rows: Param[int] = Param("rows", default=5, description="how many rows to load")
    day: Param[str] = Param("day", type=str, description="the day the load is of")

    @task(name=f"{scope_name}_load")
    def load(rows: int, day: str) -> int:
        return rows

    source = f"serve-{scope_name}"
    engine = Engine(
        MqttConnector(mqtt_broker.host, mqtt_broker.port, source_id=source),
        heartbeat_interval=None,
    )
    announced = asyncio.Event()

    def heard(message: Message) -> None:
        if message.payload:
            announced.set()

    async with MqttConnector(mqtt_broker.host, mqtt_broker.port, presence=False) as listening:
        await listening.subscribe(served_topic("local", "default", source), heard)
        serving = asyncio.create_task(engine.serve({scope_name: load(rows, day)}))
        try:
            await asyncio.wait_for(announced.wait(), 15)
            listed = await asyncio.to_thread(cascade, mqtt_broker, "served", "--json")
            assert listed.exit_code == 0, listed.output
            (mine,) = [s for s in json.loads(listed.stdout)["served"] if s["source"] == source]
            assert sorted(mine["workflows"][0]["params"], key=lambda p: p["name"]) == [
                {"name": "day", "annotation": "str", "description": "the day the load is of"},
                {
                    "name": "rows",
                    "required": False,
                    "default": 5,
                    "annotation": "int",
                    "description": "how many rows to load",
                },
            ]
            table = await asyncio.to_thread(cascade, mqtt_broker, "served", columns=160)
            assert table.exit_code == 0, table.output
            params = [line.split("│")[2].rstrip() for line in table.stdout.splitlines()[4:8]]
            assert params == [
                " day: str",
                "   the day the load is of",
                " rows: int = 5",
                "   how many rows to load",
            ], table.stdout
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
