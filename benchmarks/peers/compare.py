"""Cascade beside its peers: the same three workloads in Cascade (no connector, MQTT), the
existing Cascade engine (no connector, MQTT), Prefect 3 and Dask's threaded scheduler; one
table of median wall times and ratios to Cascade without a connector.

Each peer's run of a workload is in a child process (``child.py``) with that peer's interpreter
(``--interpreter prefect=PYTHON``; Cascade's is this one), which warms up once and times
``--repeats`` runs. The MQTT rows publish to a private mosquitto started here on a loopback
port. A peer without an interpreter, or whose run fails, keeps its row, saying why.
``--write docs/performance.md`` puts the table, the date, the machine and the versions into
that page, between its ``peers`` markers (appended where the page has none).
``python3 dev.py nox -s peers`` makes every peer's environment and runs this.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cascade.testkit import MosquittoBroker, mosquitto_path

HERE = Path(__file__).resolve().parent
CHILD = HERE / "child.py"
BEGIN = "<!-- peers: begin (written by benchmarks/peers/compare.py --write) -->"
END = "<!-- peers: end -->"
HOW_TO_RUN = "python3 dev.py nox -s peers -- --existing PATH --write docs/performance.md"


@dataclass(frozen=True)
class Peer:
    """One row group: a tool, how it runs (``module``: ``peer_<module>.py``), and with MQTT."""

    name: str  # as --peers names it
    label: str  # as the table shows it
    module: str
    mqtt: bool = False

    @property
    def missing(self) -> str:
        """Why its rows have no numbers when no interpreter is given for it."""
        if self.module == "existing":
            return (
                "no checkout of github.com/doucx/Cascade given: `python3 dev.py nox -s peers "
                "-- --existing PATH` (or CASCADE_EXISTING_ENGINE=PATH)"
            )
        return f"no interpreter given (--interpreter {self.module}=PYTHON)"


@dataclass(frozen=True)
class Workload:
    """One of the three workloads (``WORKLOADS`` in ``peer_<module>.py``) at its size."""

    name: str
    label: str  # with {size}
    size: int


PEERS = [
    Peer("cascade", "Cascade", "cascade"),
    Peer("cascade-mqtt", "Cascade, MQTT", "cascade", mqtt=True),
    Peer("existing", "existing Cascade", "existing"),
    Peer("existing-mqtt", "existing Cascade, MQTT", "existing", mqtt=True),
    Peer("prefect", "Prefect 3", "prefect"),
    Peer("dask", "Dask, threads", "dask"),
]
WORKLOADS = [
    Workload("noop", "{size:,} no-op tasks", 2000),
    Workload("etl", "ETL, {size:,} items mapped through 4 steps", 100),
    Workload("cpu", "{size:,} tasks of 50 ms CPU", 200),
]
NOTES = """\
- Wall time of one run, from building its graph to its answer (checked), median of the runs;
  each peer's workload in a process of its own, after one untimed warm-up run of 10 items
  (imports, Prefect's ephemeral server start, Dask's and the engines' thread pools).
- Each tool as its users write it, with its defaults but for console logging (at WARNING
  where a tool logs each task: the existing engine, Prefect): Cascade `@task`, `.map`,
  `cascade.runtime.run`; the existing engine `cs.task`, `.map`, `cs.run`; Prefect `@flow`,
  `@task`, `.map` on its default thread pool, with its ephemeral local server (SQLite, in a
  temporary PREFECT_HOME); Dask `dask.delayed` and `dask.compute` on the threaded
  scheduler, its ETL's map over rows known when its graph is built (each item indexes
  `extract`'s list: one small task more per item).
- MQTT rows: a new connector each run (connecting, subscribing and disconnecting are in the
  time), to a private mosquitto on loopback (`set_tcp_nodelay true`).
- The CPU tasks are pure Python holding the GIL, so every tool runs them about one at a time
  in its threads: that row shows what each adds to real work.
- The ratio is to Cascade without a connector on the same workload."""


@dataclass
class Row:
    peer: Peer
    workload: Workload
    times: list[float]
    version: str = ""
    reason: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


def run_child(
    python: str, peer: Peer, workload: Workload, repeats: int, broker: str, timeout: float
) -> Row:
    """One peer's workload in ``python``: its row, with its times or why it has none."""
    command = [python, str(CHILD), peer.module, workload.name, str(workload.size)]
    command += ["--repeats", str(repeats)] + (["--broker", broker] if peer.mqtt else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Row(peer, workload, [], reason=f"timed out after {timeout:.0f} s")
    except OSError as error:
        return Row(peer, workload, [], reason=f"cannot start {python}: {error}")
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not results:
        said = done.stderr.strip().splitlines()[-1:] or ["nothing on stderr"]
        print(done.stderr[-4000:], file=sys.stderr)
        return Row(peer, workload, [], reason=f"exited {done.returncode}: {said[0]}")
    result = json.loads(results[-1].removeprefix("RESULT "))
    if "error" in result:
        print(done.stderr[-4000:], file=sys.stderr)
        return Row(peer, workload, [], reason=result["error"])
    return Row(peer, workload, result["times"], version=result["version"])


def ratio(row: Row, rows: Sequence[Row]) -> str:
    base = next(
        (r.median for r in rows if r.workload == row.workload and r.peer.name == "cascade"), None
    )
    return "—" if row.median is None or not base else f"{row.median / base:.2f}"


def table(rows: Sequence[Row]) -> str:
    """The Markdown table: workload, peer, median s, ratio to Cascade, a note."""
    lines = ["| workload | peer | median s | ratio to Cascade | note |", "|---|---|--:|--:|---|"]
    for row in rows:
        median = "—" if row.median is None else f"{row.median:.3f}"
        label = row.workload.label.format(size=row.workload.size)
        note = row.reason.replace("|", "\\|")
        lines.append(f"| {label} | {row.peer.label} | {median} | {ratio(row, rows)} | {note} |")
    return "\n".join(lines)


def machine() -> str:
    """Cores, CPU model, system and Python version, and the load average when called."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError, AttributeError):
        load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    return (
        f"{os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}{load}"
    )


def section(rows: Sequence[Row], repeats: int, measured_on: str) -> str:
    """The page's section: when, where, which versions, the table and its notes."""
    versions = sorted({row.version for row in rows if row.version})
    return "\n".join([
        BEGIN,
        f"Measured {datetime.date.today().isoformat()} on {measured_on}; median of {repeats} "
        f"run{'s' if repeats != 1 else ''} each. Versions: {', '.join(versions) or 'none ran'}.",
        "",
        table(rows),
        "",
        NOTES,
        "",
        f"Run it again with `{HOW_TO_RUN}`.",
        END,
    ])  # fmt: skip


def write_page(path: Path, text: str) -> None:
    """Put ``text`` between the page's markers, or at its end where it has none."""
    page = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    if BEGIN in page and END in page:
        before, rest = page.split(BEGIN, 1)
        page = before + text + rest.split(END, 1)[1]
    else:
        page = page.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(page, encoding="utf-8")


@contextlib.contextmanager
def broker_for(peers: Sequence[Peer]) -> Iterator[str | None]:
    """``host:port`` of a private mosquitto when a peer publishes over MQTT (``None`` where
    none does, or mosquitto is not installed)."""
    if not any(peer.mqtt for peer in peers) or mosquitto_path() is None:
        yield None
        return
    with MosquittoBroker(extra_config="set_tcp_nodelay true") as mosquitto:
        yield f"{mosquitto.host}:{mosquitto.port}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [peer.name for peer in PEERS]
    parser.add_argument("--peers", default=",".join(names), help=f"some of {','.join(names)}")
    parser.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS))
    parser.add_argument("--repeats", type=int, default=5)
    for workload in WORKLOADS:
        parser.add_argument(
            f"--{workload.name}", type=int, default=workload.size, metavar="N",
            help=f"the size of {workload.name} (default {workload.size})",
        )  # fmt: skip
    parser.add_argument(
        "--interpreter", action="append", default=[], metavar="PEER=PYTHON",
        help="the Python a peer runs in (existing, prefect, dask; Cascade runs in this one)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a child may take")
    parser.add_argument("--write", type=Path, metavar="PAGE", help="e.g. docs/performance.md")
    args = parser.parse_args(argv)
    for name in args.peers.split(","):
        if name not in names:
            parser.error(f"unknown peer {name!r}: choose among {', '.join(names)}")
    for name in args.workloads.split(","):
        if name not in [workload.name for workload in WORKLOADS]:
            parser.error(f"unknown workload {name!r}: choose among noop, etl, cpu")
    for given in args.interpreter:
        if "=" not in given:
            parser.error(f"--interpreter takes PEER=PYTHON, not {given!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    chosen = args.peers.split(",")
    peers = [peer for peer in PEERS if peer.name in chosen]
    workloads = [
        Workload(w.name, w.label, getattr(args, w.name))
        for w in WORKLOADS
        if w.name in args.workloads.split(",")
    ]
    pythons = {"cascade": sys.executable} | dict(i.split("=", 1) for i in args.interpreter)
    measured_on = machine()
    rows = []
    with broker_for(peers) as broker:
        for workload in workloads:
            for peer in peers:
                python = pythons.get(peer.module)
                if python is None:
                    row = Row(peer, workload, [], reason=peer.missing)
                elif peer.mqtt and broker is None:
                    row = Row(peer, workload, [], reason="mosquitto is not installed")
                else:
                    row = run_child(
                        python, peer, workload, args.repeats, broker or "", args.timeout
                    )
                median = "—" if row.median is None else f"{row.median:.3f} s"
                print(f"{workload.name:<5} {peer.label:<24} {median} {row.reason}", flush=True)
                rows.append(row)
    text = section(rows, args.repeats, measured_on)
    print(f"\n{text}")
    if args.write:
        write_page(args.write, text)
        print(f"\nwritten to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
