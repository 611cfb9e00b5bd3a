"""What `cascade dashboard` gives the dashboard package: the command line of a recorder on its
broker, and the demo workflow it runs with ``--demo``."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from pathlib import Path

from cascade.control import Controller

from ...plumbing._broker import BrokerOptions

__all__ = ["demo_loop", "record_command"]


def record_command(broker: BrokerOptions, db: Path | None = None) -> str:
    """`cascade record` on the dashboard's broker (its password aside: it has a variable),
    into the SQLite file ``db`` when given (one the dashboard waits for)."""
    words = ["cascade", "record", "--host", broker.address]  # every node: a:1883,b:1883
    if db is not None:
        words += ["--db", str(db)]
    if broker.username:
        words += ["--username", broker.username]
    if broker.ca_file is not None:
        words += ["--ca-file", str(broker.ca_file)]
    elif broker.tls:
        words.append("--tls")
    return shlex.join(words)


async def demo_loop(broker: BrokerOptions) -> None:
    """The demo workflow, run again and again on one engine, a few seconds apart."""
    from cascade.runtime import Engine, TaskFailedError

    from ..demo._demo import (
        API_RATE,
        API_REASON,
        DEMO_OPERATOR,
        LIMITED,
        build_workflow,
        demo_engine_connector,
    )

    connector = demo_engine_connector(broker)
    async with connector:
        control = Controller(connector, issued_by=DEMO_OPERATOR, timeout=broker.timeout)
        await control.limit(LIMITED, rate=f"{API_RATE:g}/s", ttl=3600, reason=API_REASON)
        engine = Engine(connector, max_concurrency=4, heartbeat_interval=1.0)
        while True:
            with contextlib.suppress(TaskFailedError):  # one task fails on purpose
                await engine.run(build_workflow(24))
            await asyncio.sleep(5.0)
