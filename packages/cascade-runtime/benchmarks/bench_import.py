"""What importing Cascade costs every script and every command, now and at a baseline.

Each row is a fresh interpreter (``--repeats`` of them, the codes taking turns), from compiled
bytecode as pip installs it; its figure is the median of their CPU seconds (user + system):

- ``import cascade.runtime``: the import alone (``time.process_time()`` around it, the
  interpreter's own start left out); aim (issue 93): at most 0.15 s;
- a plain run's imports: ``import cascade.runtime as cs`` and what a script that runs a
  workflow then touches (``cs.task``, ``cs.run``, ``cs.Engine``), measured alike: what serving,
  schedules, Dask and the results' reruns no longer add to it;
- ``cascade --help``: the whole process, to exit 0 (``python -m cascade.cli --help``); aim
  (issues 66 and 93): at most 0.25 s.

This tree's sources are on ``PYTHONPATH`` (whatever the environment installed); the baseline
is ``--baseline-ref`` (``git archive`` of every package's sources, on
``PYTHONPATH`` instead); ``--no-baseline`` measures this tree alone.

    python bench_import.py [--repeats 15] [--baseline-ref main] [--no-baseline]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TIMED = "import time; _t = time.process_time(); {code}; print(time.process_time() - _t)"


@dataclass(frozen=True)
class Case:
    """One row: its name, the Python code timed in a fresh interpreter (``None``: the whole
    process of ``args`` is), and its aim in CPU seconds (``None``: none)."""

    name: str
    code: str | None
    args: tuple[str, ...] = ()
    aim: float | None = None


CASES = (
    Case("`import cascade.runtime`", "import cascade.runtime", aim=0.15),
    Case(
        "a plain run's imports (`cs.task`, `cs.run`, `cs.Engine`)",
        "import cascade.runtime as cs; cs.task; cs.run; cs.Engine",
    ),
    Case("`cascade --help` (the process)", None, ("-m", "cascade.cli", "--help"), aim=0.25),
)


def compile_sources(sources: list[str]) -> None:
    """Compile ``sources`` to bytecode once, as pip does when it installs a package."""
    command = [sys.executable, "-m", "compileall", "-q", *sources]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def baseline_sources(ref: str) -> str:
    """Every package's sources at ``ref``, extracted and compiled: the ``PYTHONPATH`` that puts
    them before this tree's."""
    where = Path(tempfile.mkdtemp(prefix="bench-import-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "packages"], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(where, filter="data")
    sources = sorted(str(p) for p in (where / "packages").glob("*/src") if p.is_dir())
    compile_sources(sources)
    return os.pathsep.join(sources)


def environment(pythonpath: str | None) -> dict[str, str]:
    """The interpreters' environment: bytecode read, no history, ``pythonpath`` first."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="bench-import-home-")
    env["COLUMNS"] = "100"
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def check(env: dict[str, str], where: Path) -> None:
    """Raise unless ``env`` imports ``cascade.runtime`` and ``cascade.cli`` from ``where``."""
    said = subprocess.run(
        [sys.executable, "-c", "import cascade.runtime as r, cascade.cli as c; "
         "print(r.__file__, c.__file__)"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if not all(path.startswith(str(where)) for path in said):
        raise RuntimeError(f"measured {said}, not the code under {where}")


def cpu_once(case: Case, env: dict[str, str]) -> float:
    """CPU seconds of ``case`` in one fresh interpreter."""
    if case.code is not None:
        command = [sys.executable, "-c", TIMED.format(code=case.code)]
        said = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return float(said.stdout.split()[-1])
    process = subprocess.Popen(
        [sys.executable, *case.args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{case.args} failed: {process.stderr.read()!r}")  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    return usage.ru_utime + usage.ru_stime


def measure(codes: dict[str, dict[str, str]], repeats: int) -> dict[tuple[str, str], float]:
    """Each case's median CPU seconds with each code, the codes taking turns."""
    got: dict[tuple[str, str], list[float]] = {(c.name, code): [] for c in CASES for code in codes}
    for case in CASES:  # a first run writes the dependencies' bytecode
        for env in codes.values():
            cpu_once(case, env)
    for _ in range(repeats):
        for case in CASES:
            for code, env in codes.items():
                got[case.name, code].append(cpu_once(case, env))
    return {key: statistics.median(values) for key, values in got.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--baseline-ref", default="main", help="git ref of the baseline")
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    here = sorted(str(p) for p in (ROOT / "packages").glob("*/src") if p.is_dir())
    compile_sources(here)
    codes = {"now": environment(os.pathsep.join(here))}  # this tree's, wherever it is installed
    if not args.no_baseline:
        codes["baseline"] = environment(baseline_sources(args.baseline_ref))
    for code, env in codes.items():  # the code measured is the one meant
        where = ROOT if code == "now" else Path(env["PYTHONPATH"].split(os.pathsep)[0]).parents[1]
        check(env, where)
    got = measure(codes, args.repeats)
    load = os.getloadavg()[0]
    print(f"\n### Import time (CPU s, medians of {args.repeats} fresh interpreters; load average "
          f"{load:.1f} on {os.cpu_count()} cores)\n")  # fmt: skip
    head = ["what", *(f"CPU s {code}" for code in codes), "aim"]
    if "baseline" in codes:
        head[2] = f"CPU s {args.baseline_ref}"
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for case in CASES:
        row = [case.name, *(f"{got[case.name, code]:.3f}" for code in codes)]
        now = got[case.name, "now"]
        row.append(
            "-"
            if case.aim is None
            else f"≤ {case.aim} s: {'met' if now <= case.aim else 'not met'}"
        )
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
