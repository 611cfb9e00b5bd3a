"""Benchmark of the README's quick start: how long `python3 dev.py demo` takes, wall clock.

Rows, each the median (and range) of ``--repeats`` runs, side by side:

- ``cascade demo`` alone: the demo's own run in the environment dev.py made (the floor);
- ``dev.py demo``, environment reused: what a second quick start costs;
- ``dev.py demo``, reinstalling: the same with the environment's install stamp removed, so
  the packages are installed again (an existing environment whose metadata changed).

Target: a second `dev.py demo` within 8 s on the project's 2-core machine. A first
quick start in a fresh clone also creates ``.venv`` and ``.nox/demo`` (downloads): run
``--fresh`` to time that once, in a throwaway clone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TARGET_SECONDS = 8.0


def timed(command: list[str], cwd: Path) -> float:
    """Seconds ``command`` took, wall clock; it must succeed."""
    started = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def dev_demo(clone: Path) -> list[str]:
    # Without CI set, dev.py reuses the nox environment, as a user's quick start does.
    return [sys.executable, str(clone / "dev.py"), "demo"]


def row(name: str, seconds: list[float], floor: float | None) -> str:
    median = statistics.median(seconds)
    spread = f"{min(seconds):.1f}-{max(seconds):.1f}"
    ratio = "" if floor is None else f"{median / floor:.2f}x"
    return f"| {name} | {median:.1f} s | {spread} s | {len(seconds)} | {ratio} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="also time a fresh clone's first")
    args = parser.parse_args()
    os.environ.pop("CI", None)
    clone = ROOT
    subprocess.run(dev_demo(clone), cwd=clone, check=True, stdout=subprocess.DEVNULL)  # warm
    cascade = clone / ".nox" / "demo" / "bin" / "cascade"
    stamp = clone / ".nox" / "demo" / ".cascade-installed"
    alone = [timed([str(cascade), "demo"], clone) for _ in range(args.repeats)]
    reused = [timed(dev_demo(clone), clone) for _ in range(args.repeats)]
    reinstalled = []
    for _ in range(args.repeats):
        stamp.unlink(missing_ok=True)
        reinstalled.append(timed(dev_demo(clone), clone))
    rows = [
        row("`cascade demo` alone (the floor)", alone, None),
        row("`dev.py demo`, environment reused", reused, statistics.median(alone)),
        row("`dev.py demo`, reinstalling", reinstalled, statistics.median(alone)),
    ]
    if args.fresh:
        with tempfile.TemporaryDirectory(prefix="cascade-quickstart-") as scratch:
            fresh = Path(scratch) / "clone"
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(fresh)], check=True)
            first = timed(dev_demo(fresh), fresh)
            rows.append(
                row("`dev.py demo`, fresh clone (first)", [first], statistics.median(alone))
            )
            shutil.rmtree(fresh, ignore_errors=True)
    print("\n| quick start | median | range | runs | x floor |")
    print("|---|---:|---:|---:|---:|")
    for line in rows:
        print(line)
    second = statistics.median(reused)
    verdict = "met" if second <= TARGET_SECONDS else "NOT met"
    print(f"\nsecond `dev.py demo` ≤ {TARGET_SECONDS:g} s: {second:.1f} s, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
