"""What a `cascade` command costs to start: CPU until it is ready to talk to the broker, now and
at a baseline.

Each command runs as users run it (``python -m cascade.cli``, from compiled bytecode as pip
installs it), against a private mosquitto (``cascade.testkit``):

- ``--help`` (of the whole command and of `status`, `logs`, `watch`): the process, to exit 0;
- ``status``: the process, to exit 0 (it connects, reads the retained statuses, prints);
- ``watch --json --duration 0``: the process, to exit 0 (it connects and makes every
  subscription of the live view, then ends);
- ``logs RUN -f``: until the broker has its subscription to the run's telemetry (its last),
  read from mosquitto's log; the command is then interrupted;
- ``pause`` acknowledged: the process, to exit 0.

Columns, each now and at ``--baseline-ref`` (``git archive`` of every package's sources, on
``PYTHONPATH`` before this tree's): the CPU (user + system) the command took, median of
``--repeats``; the instructions it executed (``valgrind --tool=cachegrind``, one run: what the
machine's other load cannot change; skipped where valgrind is not installed); its import time
(``-X importtime``: the sum of every module's own time, median of ``--repeats``, in a run of
its own, as importtime slows what it measures). Aim (issue 66): every command ready within
0.25 s of CPU.

    python bench_command_start.py [--repeats 5] [--baseline-ref REF] [--no-baseline]
        [--no-cachegrind]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cascade.testkit import MosquittoBroker

ROOT = Path(__file__).resolve().parents[3]
BASELINE_REF = "1e79f7bc452cf3fdb0121c6e2a48ea6671f5cf76"  # main before issue 66's item 4
AIM = 0.25  # seconds of CPU to be ready to talk to the broker
USER_HZ = os.sysconf("SC_CLK_TCK")
TIMEOUT = 120.0  # the longest one command may take (under valgrind) before the bench gives up
WAIT_STEP = 0.005  # how often mosquitto's log is looked at for a subscription (another process)


@dataclass(frozen=True)
class Case:
    """One command: its name in the table, its arguments (``{broker}`` and ``{run}`` filled
    in), and, for a command that does not end by itself, the topic whose SUBSCRIBE in the
    broker's log says it is ready."""

    name: str
    args: tuple[str, ...]
    ready_on: str | None = None


CASES = (
    Case("`cascade --help`", ("--help",)),
    Case("`cascade status --help`", ("status", "--help")),
    Case("`cascade logs --help`", ("logs", "--help")),
    Case("`cascade watch --help`", ("watch", "--help")),
    Case("`cascade status`", ("status", "--host", "{broker}", "--timeout", "60")),
    Case(
        "`cascade watch` subscribed",
        ("watch", "--json", "--duration", "0", "--host", "{broker}", "--timeout", "60"),
    ),
    Case(
        "`cascade logs RUN -f` subscribed",
        ("logs", "{run}", "-f", "--host", "{broker}", "--timeout", "60"),
        ready_on="/telemetry/+/+/{run}/",
    ),
    Case(
        "`cascade pause` acknowledged",
        ("pause", "task:bench_start", "--ttl", "60", "--host", "{broker}", "--timeout", "60"),
    ),
)


@dataclass
class Measured:
    """One code's figures for one case."""

    cpu: list[float] = field(default_factory=list)
    imports: list[float] = field(default_factory=list)
    instructions: int | None = None


def baseline_sources(ref: str) -> str:
    """Every package's sources at ``ref``, extracted and compiled: the ``PYTHONPATH`` that puts
    them before this tree's (each ``cascade.*`` package is found there first)."""
    where = Path(tempfile.mkdtemp(prefix="bench-command-start-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "packages"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(where, filter="data")
    sources = sorted(str(p) for p in (where / "packages").glob("*/src") if p.is_dir())
    compile_sources(sources)
    return os.pathsep.join(sources)


def compile_sources(sources: list[str]) -> None:
    """Compile ``sources`` to bytecode once, as pip does when it installs a package."""
    command = [sys.executable, "-m", "compileall", "-q", *sources]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def environment(pythonpath: str | None) -> dict[str, str]:
    """The commands' environment: bytecode read and written (the dependencies' is written by a
    first run), no history, the code of ``pythonpath`` first when given."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="bench-command-start-home-")
    env["COLUMNS"] = "100"
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def check(env: dict[str, str], where: Path) -> None:
    """Raise unless ``env`` imports every ``cascade.*`` package from under ``where``."""
    said = subprocess.run(
        [sys.executable, "-c", "import cascade.cli, cascade.interfaces, cascade.reader as r; "
         "print(cascade.cli.__file__, cascade.interfaces.__file__, r.__file__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if not all(path.startswith(str(where)) for path in said):
        raise RuntimeError(f"measured {said}, not the code under {where}")


def command_of(case: Case, broker: MosquittoBroker, run_id: str) -> list[str]:
    address = f"{broker.host}:{broker.port}"
    args = [a.format(broker=address, run=run_id) for a in case.args]
    return [sys.executable, "-m", "cascade.cli", *args]


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / USER_HZ


def wait_subscribed(
    broker: MosquittoBroker, topic: str, seen: int, process: subprocess.Popen[bytes]
) -> None:
    """Until mosquitto's log has a SUBSCRIBE to ``topic`` after its first ``seen`` bytes."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        text = broker.log_path.read_bytes()[seen:].decode(errors="replace")
        if topic in text:
            return
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} ended before it subscribed")
        time.sleep(WAIT_STEP)  # mosquitto writes its log: there is nothing to await
    raise RuntimeError(f"{process.args!r} did not subscribe to {topic} in time")


def run_case(
    case: Case,
    broker: MosquittoBroker,
    env: dict[str, str],
    prefix: list[str] | None = None,
    on_ready: Callable[[int], float] = process_cpu,
) -> tuple[float, str]:
    """Run ``case`` once (under ``prefix``, say valgrind): the CPU seconds it took to be
    ready, and what it said on stderr."""
    run_id = uuid.uuid4().hex
    command = [*(prefix or []), *command_of(case, broker, run_id)]
    seen = broker.log_path.stat().st_size
    # stderr to a file: importtime's lines would fill a pipe nobody reads until the end
    with tempfile.TemporaryFile() as said:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=said)
        try:
            if case.ready_on is None:
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                cpu = usage.ru_utime + usage.ru_stime
            else:
                wait_subscribed(broker, case.ready_on.format(run=run_id), seen, process)
                cpu = on_ready(process.pid)
                process.send_signal(signal.SIGINT)
                process.wait(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        said.seek(0)
        stderr = said.read().decode(errors="replace")
    if case.ready_on is None and process.returncode != 0:
        raise RuntimeError(f"{command} exited {process.returncode}: {stderr[-2000:]}")
    return cpu, stderr


def import_seconds(stderr: str) -> float:
    """The sum of every module's own import time ``-X importtime`` wrote, in seconds."""
    own = [int(m.group(1)) for m in re.finditer(r"^import time:\s+(\d+) \|", stderr, re.M)]
    return sum(own) / 1e6


def instructions(case: Case, broker: MosquittoBroker, env: dict[str, str]) -> int:
    """The instructions ``case`` executed, counted by cachegrind (to its end: interrupted once
    ready, when it does not end by itself)."""
    out = Path(tempfile.mkdtemp(prefix="bench-cachegrind-")) / "out"
    prefix = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
    _, said = run_case(case, broker, env, prefix=prefix, on_ready=lambda pid: 0.0)
    found = re.search(r"I\s+refs:\s+([\d,]+)", said)
    if found is None:
        raise RuntimeError(f"no instruction count from cachegrind: {said[-2000:]}")
    return int(found.group(1).replace(",", ""))


def measure(
    codes: dict[str, dict[str, str]], broker: MosquittoBroker, repeats: int, cachegrind: bool
) -> dict[tuple[str, str], Measured]:
    """Every case with every code: the codes take turns within each round, so that the
    machine's other load falls on each alike."""
    got = {(case.name, code): Measured() for case in CASES for code in codes}
    for case in CASES:  # a first run of each writes the dependencies' bytecode
        for env in codes.values():
            run_case(case, broker, env)
    for round_ in range(repeats):
        for case in CASES:
            for code, env in codes.items():
                got[case.name, code].cpu.append(run_case(case, broker, env)[0])
                timed_env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
                said = run_case(case, broker, timed_env)[1]
                got[case.name, code].imports.append(import_seconds(said))
        print(f"round {round_ + 1} of {repeats} done", file=sys.stderr, flush=True)
    if cachegrind:
        for case in CASES:
            for code, env in codes.items():
                got[case.name, code].instructions = instructions(case, broker, env)
    return got


def table(got: dict[tuple[str, str], Measured], codes: list[str], ref: str, repeats: int) -> None:
    """The markdown table: each case, now beside the baseline, and the aim."""
    load = os.getloadavg()[0]
    print(f"\n### Command start (medians of {repeats}; baseline {ref[:12]}; load average "
          f"{load:.1f} on {os.cpu_count()} cores)\n")  # fmt: skip
    head = ["command"]
    for name in ("CPU s", "instructions (G)", "import time s"):
        head += [f"{name} {code}" for code in codes]
    head += ["aim ≤ 0.25 s CPU"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for case in CASES:
        row = [case.name]
        for code in codes:
            row.append(f"{statistics.median(got[case.name, code].cpu):.3f}")
        for code in codes:
            count = got[case.name, code].instructions
            row.append("-" if count is None else f"{count / 1e9:.2f}")
        for code in codes:
            row.append(f"{statistics.median(got[case.name, code].imports):.3f}")
        now = statistics.median(got[case.name, "now"].cpu)
        row.append("met" if now <= AIM else "not met")
        print("| " + " | ".join(row) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-cachegrind", action="store_true")
    args = parser.parse_args()
    compile_sources(sorted(str(p) for p in (ROOT / "packages").glob("*/src") if p.is_dir()))
    codes = {"now": environment(None)}
    if not args.no_baseline:
        codes["baseline"] = environment(baseline_sources(args.baseline_ref))
    for code, env in codes.items():  # the code measured is the one meant
        where = ROOT if code == "now" else Path(env["PYTHONPATH"].split(os.pathsep)[0]).parents[1]
        check(env, where)
    cachegrind = not args.no_cachegrind and shutil.which("valgrind") is not None
    # the broker logs each SUBSCRIBE: what says a command that does not end is ready
    with MosquittoBroker(extra_config="log_type subscribe") as broker:
        got = measure(codes, broker, args.repeats, cachegrind)
    table(got, list(codes), args.baseline_ref, args.repeats)


if __name__ == "__main__":
    main()
