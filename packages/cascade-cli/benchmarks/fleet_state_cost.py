"""What a page's ``/api/state`` costs a dashboard holding a fleet, in CPU: a figure the load of
a shared machine changes little, unlike its latency.

``python fleet_state_cost.py ENGINES WITHOUT`` (bench_fleet.py runs it in a process of the code
measured: a baseline's or this tree's) builds a dashboard in fleet mode, in process with no
broker, holding ENGINES simulated engines (a share WITHOUT of them sending no summary) and their
summaries as the fleet simulator makes them; then, ROUNDS times, folds in the fresh summaries of
CHURN engines (what a quarter of a second of such a fleet brings; all of a smaller fleet's)
and asks ``/api/state`` as a page polls it (25 runs, 25 engines). Printed, as one JSON line:
the median CPU milliseconds of one answer, and the median microseconds of CPU per summary
folded in.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import time
from collections import Counter
from datetime import datetime, timezone

import httpx

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.interfaces import Message
from cascade.testkit import FleetSettings
from cascade.testkit._fleet_engines import SimulatedEngine

ROUNDS = 30
CHURN = 500  # summaries folded in before each answer: 2,000/s for a quarter of a second
PAGE = {"limit": "25", "engines_limit": "25"}  # as a page asks for them


def _iso() -> str:
    return datetime.now(timezone.utc).isoformat()


async def cost(engines: int, without: float) -> dict[str, float]:
    """The median CPU of one page's ``/api/state`` (ms) and of one summary folded in (µs)."""
    hub = DashboardHub(InMemoryConnector(InMemoryBroker(), presence=False), fleet_threshold=0)
    await hub.start()
    settings = FleetSettings("localhost", 1883, engines=engines, without_summaries=without)
    rng, tally = random.Random(66), Counter[str]()
    fleet = [SimulatedEngine(settings, n, 1_000 + n, rng, tally) for n in range(engines)]

    def message(out: tuple[str, bytes, int, bool]) -> Message:
        return Message(out[0], json.loads(out[1]), raw=out[1], retain=out[3])

    def summaries(chosen: list[SimulatedEngine]) -> float:
        """Fold in the chosen engines' fresh summaries; the CPU seconds the folding took."""
        ts, now, wall = _iso(), time.monotonic(), time.time()
        made: list[Message] = []
        for engine in chosen:
            engine.step(now, wall, ts)  # its run moves on: each summary says something new
            if engine.summarises:
                made.extend(message(out) for out in engine.summary(now, ts))
        began = time.process_time()
        for summary in made:
            hub.model.apply(summary)
        return time.process_time() - began

    ts = _iso()
    for engine in fleet:
        hub.model.apply(message(engine.status(True, ts)))
    summaries(fleet)
    answers, folds = [], []
    app = create_app(hub, DashboardSettings(token=None))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        churn = min(CHURN, engines)
        for _ in range(ROUNDS):
            folds.append(summaries(rng.sample(fleet, churn)) / churn * 1e6)
            began = time.process_time()
            answer = await http.get("/api/state", params=PAGE)
            answers.append((time.process_time() - began) * 1000)
            answer.raise_for_status()
    await hub.stop()
    return {"state_cpu_ms": statistics.median(answers), "fold_us": statistics.median(folds)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(cost(int(sys.argv[1]), float(sys.argv[2])))))
