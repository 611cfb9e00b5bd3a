"""Telemetry's whole cost per task in instructions, which a shared machine's load does not move.

For no-op plain-function and coroutine tasks, without a connector and with MqttConnector to a
private mosquitto (``set_tcp_nodelay true``), the instructions (valgrind's cachegrind, ``I
refs``) of a process that runs ``Engine(connector).run([work(i) for i in range(n)])``, for one
task and for 1 + ``--tasks`` tasks: per task is the difference over ``--tasks``, which leaves
out the interpreter's start, the imports and a run's fixed start and stop. Prints them with
the ratio of MQTT to none (issue 66's aim for the wall-time headline of ``bench_engine.py``:
at most 1.3x). ``--ablate`` adds rows with MQTT where one part of the telemetry is replaced by
nothing, to say what each part costs: ``handler`` (the run's events are not taken: what is
left is the rest of a connector's wiring), ``counters``, ``encode`` (every task event is the
payload ``b"x"``) and ``send`` (the payloads are not handed to the connector). ``--gc-off``
measures with the garbage collector disabled (its share is the difference).

Not in ``nox -s bench`` (valgrind runs each process ~50 times slower: minutes); run it with
the bench environment's interpreter, ``.nox/bench/bin/python
packages/cascade-runtime/benchmarks/telemetry_instructions.py``. Needs valgrind and mosquitto.
A wall-time ratio on a loaded machine can be far above this one: the broker shares the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ABLATIONS = ("handler", "counters", "encode", "send")
_REFS = re.compile(rb"I\s+refs:\s+([\d,]+)")


def child(kind: str, port: int, tasks: int, ablate: str) -> None:
    """One measured process: a run of ``tasks`` no-op tasks (``port`` 0: without a connector),
    with the part ``ablate`` of the telemetry replaced by nothing (``""``: none)."""
    from cascade.connectors.mqtt import MqttConnector
    from cascade.runtime import Engine, task
    from cascade.runtime.link import _counters, _envelopes, _telemetry

    if ablate == "handler":
        _telemetry.TelemetrySubscriber.on_event = lambda self, event: None  # type: ignore[method-assign]
    elif ablate == "counters":
        _counters.RunCounters.update = lambda self, event, seq: None  # type: ignore[method-assign]
    elif ablate == "encode":
        _envelopes.RunEnvelopes.task_envelope = lambda self, event, seq: b"x"  # type: ignore[method-assign]
    elif ablate == "send":
        MqttConnector.batch_publisher = (  # type: ignore[method-assign]
            lambda self, topic, qos=0, retain=False: lambda raws: None
        )

    @task
    async def noop(i: int) -> int:
        return i

    @task
    def sync_noop(i: int) -> int:
        return i

    work = noop if kind == "coroutine" else sync_noop

    async def run() -> None:
        connector = MqttConnector("127.0.0.1", port) if port else None
        await Engine(connector).run([work(i) for i in range(tasks)])

    asyncio.run(run())


def instructions(valgrind: str, child_args: list[str], gc_off: bool) -> int:
    """The instructions of one child process run under cachegrind."""
    command = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    command += [sys.executable, __file__, *(["--gc-off"] if gc_off else []), "--child"]
    done = subprocess.run(command + child_args, capture_output=True, check=True)
    found = _REFS.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output: {done.stderr[-500:]!r}")
    return int(found.group(1).replace(b",", b""))


def per_task(
    valgrind: str, pool: ThreadPoolExecutor, tasks: int, row: tuple[str, str, str], gc_off: bool
) -> int:
    """Instructions per task of ``row`` (kind, port, ablated part): a run of 1 + ``tasks``
    tasks less a run of one, over ``tasks``."""
    kind, port, ablate = row
    one, many = (
        pool.submit(instructions, valgrind, [kind, port, str(n), ablate], gc_off)
        for n in (1, tasks + 1)
    )
    return round((many.result() - one.result()) / tasks)


def measure(arguments: argparse.Namespace) -> None:
    """Print the table."""
    from cascade.testkit import MosquittoBroker, mosquitto_path

    valgrind = shutil.which("valgrind")
    if valgrind is None or mosquitto_path() is None:
        print("needs valgrind and mosquitto: not measured")
        return
    with MosquittoBroker(extra_config="set_tcp_nodelay true") as broker:
        port = str(broker.port)
        # every module compiled once first, so that no measured process writes bytecode
        for kind in ("plain", "coroutine"):
            subprocess.run([sys.executable, __file__, "--child", kind, port, "1", ""], check=True)
        rows: dict[tuple[str, str], tuple[str, str, str]] = {}
        for kind in ("plain", "coroutine"):
            rows[kind, "none"] = (kind, "0", "")
            rows[kind, "mqtt"] = (kind, port, "")
            for part in arguments.ablate:
                rows[kind, f"mqtt, no {part}"] = (kind, port, part)
        with ThreadPoolExecutor(max(1, min(arguments.jobs, os.cpu_count() or 1))) as pool:
            tasks, gc_off = arguments.tasks, arguments.gc_off
            measured = {
                name: per_task(valgrind, pool, tasks, row, gc_off) for name, row in rows.items()
            }
    off = ", garbage collector off" if arguments.gc_off else ""
    print(f"\ninstructions per task (valgrind), runs of {arguments.tasks + 1} less 1 task{off}")
    print(f"{'tasks':<10} {'connector':<20} {'per task':>10} {'ratio':>6}")
    for (kind, name), value in measured.items():
        ratio = value / measured[kind, "none"]
        print(f"{kind:<10} {name:<20} {value:>10,} {ratio:6.2f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--ablate", default="", help=f"comma-separated: {', '.join(ABLATIONS)}")
    parser.add_argument("--gc-off", action="store_true")
    parser.add_argument("--jobs", type=int, default=2, help="processes measured at once")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    arguments.ablate = [part for part in arguments.ablate.split(",") if part]
    if unknown := set(arguments.ablate) - set(ABLATIONS):
        parser.error(f"--ablate: not one of {', '.join(ABLATIONS)}: {', '.join(sorted(unknown))}")
    return arguments


if __name__ == "__main__":
    options = parse()
    if options.gc_off:
        gc.disable()
    if options.child is not None:
        kind, port, tasks, ablate = options.child
        child(kind, int(port), int(tasks), ablate)
    else:
        measure(options)
