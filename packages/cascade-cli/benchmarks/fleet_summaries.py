"""bench_fleet.py's check of the simulated engines' summaries against the simulator's truth.

Once the fleet has stopped, each engine's retained summary (``{prefix}/summary/{source}``) is
read back from the broker and must count the engine's runs by status and its tasks by state
as its events did (``final_tallies`` of the simulator's final counts).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as paho
from fleet_measure import Row
from paho.mqtt.enums import CallbackAPIVersion

from cascade.interfaces import EngineSummary, decode_summary, summary_filter
from cascade.testkit import FleetCounts, FleetSettings, final_tallies

READ_TIMEOUT = 60.0  # for every engine's retained summary to come


def read_summaries(settings: FleetSettings, timeout: float = READ_TIMEOUT) -> dict[str, Any]:
    """Each of the fleet's engines' retained summary, by source (those that came in
    ``timeout`` seconds); a payload that does not decode is kept as its error's text."""
    wanted = set(settings.sources())
    got: dict[str, EngineSummary | str] = {}
    done = threading.Event()

    def on_message(client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        source = message.topic.rsplit("/", 1)[-1]
        if source not in wanted:
            return
        try:
            got[source] = decode_summary(bytes(message.payload))
        except Exception as error:  # said in the table
            got[source] = f"{type(error).__name__}: {error}"
        if len(got) == len(wanted):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{settings.name}-summaries")
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(summary_filter(settings.prefix), qos=0)
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return dict(got)


def summaries_row(settings: FleetSettings, final: FleetCounts) -> tuple[Row, bool]:
    """The check's row, and whether every engine's summary agrees with the truth."""
    began = time.monotonic()
    summaries = read_summaries(settings)
    took = time.monotonic() - began
    wrong: list[str] = []
    for source in settings.sources():
        summary = summaries.get(source)
        truth = final_tallies(final.engines.get(source, {}))
        if not isinstance(summary, EngineSummary):
            wrong.append(f"{source}: {summary or 'no summary'}")
        elif (summary.runs, summary.tasks) != truth:
            wrong.append(f"{source}: says {summary.runs}, {summary.tasks}; its events {truth}")
    agree = settings.engines - len(wrong)
    said = f"{agree:,} of {settings.engines:,} engines' last summaries agree with the " \
        "simulator's truth (runs by status, tasks by state)"  # fmt: skip
    if wrong:
        said = f"DISAGREE: {said}; e.g. {wrong[0]}"
    sizes = [len(s.listed) for s in summaries.values() if isinstance(s, EngineSummary)]
    row = Row(
        "summaries (read back at the end)",
        takes=f"{len(summaries):,} retained",
        figures=f"{said}; read in {took:.1f} s; {final.summaries:,} published in all, "
        f"listing {max(sizes, default=0)} runs at most",
    )
    return row, not wrong
