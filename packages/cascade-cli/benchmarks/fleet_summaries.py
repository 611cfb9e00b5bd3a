"""bench_fleet.py's check of the simulated engines' summaries against the simulator's truth.

Once the fleet has stopped, each engine's retained summary (``{prefix}/summary/{source}``) is
read back from the broker and must count the engine's runs by status and its tasks by state
as its events did (``final_tallies`` of the simulator's final counts); and so must each
view that shows them: the dashboard's ``/api/state`` and `cascade status --json`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import paho.mqtt.client as paho
from fleet_measure import Context, Row
from paho.mqtt.enums import CallbackAPIVersion

from cascade.interfaces.summaries import EngineSummary, decode_summary, summary_filter
from cascade.testkit import FleetCounts, FleetSettings, final_tallies

READ_TIMEOUT = 60.0  # for every engine's retained summary to come
VIEWS_SETTLE = 30.0  # for a view to take in the engines' last summaries
ENGINES_PAGE = 500  # engines a /api/state asks for at a time


def read_summaries(settings: FleetSettings, timeout: float = READ_TIMEOUT) -> dict[str, Any]:
    """Each of the fleet's engines' retained summary, by source (those that came in
    ``timeout`` seconds); a payload that does not decode is kept as its error's text."""
    ours = set(settings.sources())
    wanted = set(summarising(settings))  # the others' would be strays, kept if they come
    got: dict[str, EngineSummary | str] = {}
    done = threading.Event()
    if not wanted:
        done.set()

    def on_message(client: Any, userdata: Any, message: paho.MQTTMessage) -> None:
        source = message.topic.rsplit("/", 1)[-1]
        if source not in ours:
            return
        try:
            got[source] = decode_summary(bytes(message.payload))
        except Exception as error:  # said in the table
            got[source] = f"{type(error).__name__}: {error}"
        if wanted <= got.keys():
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
    for source in summarising(settings):
        summary = summaries.get(source)
        truth = final_tallies(final.engines.get(source, {}))
        if not isinstance(summary, EngineSummary):
            wrong.append(f"{source}: {summary or 'no summary'}")
        elif (summary.runs, summary.tasks) != truth:
            wrong.append(f"{source}: says {summary.runs}, {summary.tasks}; its events {truth}")
    expected = len(summarising(settings))
    agree = expected - len(wrong)
    said = f"{agree:,} of {expected:,} engines' last summaries agree with the " \
        "simulator's truth (runs by status, tasks by state)"  # fmt: skip
    stray = [s for s in set(settings.sources()) - set(summarising(settings)) if s in summaries]
    if stray:
        wrong.append(f"{stray[0]}: sends no summary, yet one is retained")
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


def summarising(settings: FleetSettings) -> list[str]:
    """The sources of the engines that send summaries."""
    return [s for n, s in enumerate(settings.sources()) if settings.summarises(n)]


def _truths(settings: FleetSettings, final: FleetCounts) -> dict[str, dict[str, Any]]:
    """Each engine's runs by status and tasks by state, as a view's JSON counts them."""
    truths = {}
    for source in summarising(settings):  # the others' counts are in no summary
        runs, tasks = final_tallies(final.engines.get(source, {}))
        truths[source] = {"runs": msgspec.structs.asdict(runs),
                          "tasks": msgspec.structs.asdict(tasks)}  # fmt: skip
    return truths


def _disagreeing(shown: dict[str, Any], truths: dict[str, dict[str, Any]]) -> list[str]:
    """The engines whose counts in a view (``shown``: source -> summary JSON) are not the
    truth, each said as ``source: shows ...; its events ...``."""
    wrong = []
    for source, truth in truths.items():
        summary = shown.get(source)
        counts = {k: summary.get(k) for k in truth} if isinstance(summary, dict) else None
        if counts != truth:
            wrong.append(f"{source}: shows {counts}; its events {truth}")
    return wrong


def dashboard_engines(url: str) -> dict[str, Any]:
    """Every engine's summary as the dashboard's ``/api/state`` lists it, a page at a time."""
    shown: dict[str, Any] = {}
    after = None
    with httpx.Client(base_url=url, timeout=120) as http:
        while True:
            params = {"limit": "1", "engines_limit": str(ENGINES_PAGE)}
            if after:
                params["engines_after"] = after
            state = http.get("api/state", params=params).json()
            shown.update((e["source"], e["summary"]) for e in state["engines"])
            after = state.get("engines_next")
            if not after:
                return shown


def status_engines(context: Context) -> dict[str, Any]:
    """Every engine's summary as `cascade status --json` prints it."""
    printed = subprocess.run(  # every engine: by default it lists those that need a look
        context.cli("status", "--json", "--every-engine"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {e["source"]: e["summary"] for e in json.loads(printed)["engines"]}


def views_row(
    settings: FleetSettings, final: FleetCounts, views: dict[str, Callable[[], dict[str, Any]]]
) -> tuple[Row, bool]:
    """Whether each view (by name, how to read its engines' counts) shows every engine as
    the simulator's truth has it, once the fleet has stopped: each is read until it agrees,
    for VIEWS_SETTLE seconds at most (the engines' last summaries are on their way)."""
    truths = _truths(settings, final)
    said, agree = [], True
    for name, read in views.items():
        began = time.monotonic()
        while True:
            wrong = _disagreeing(read(), truths)
            if not wrong or time.monotonic() - began > VIEWS_SETTLE:
                break
            time.sleep(1.0)
        ok = len(truths) - len(wrong)
        said.append(f"{name}: {ok:,} of {len(truths):,} agree" + (f" (e.g. {wrong[0]})" if wrong
                                                                   else ""))  # fmt: skip
        agree = agree and not wrong
    row = Row("the views at the end", figures="; ".join(said) + " (runs by status, tasks by state)")
    return row, agree
