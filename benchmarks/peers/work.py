"""The work every peer runs: plain functions, each peer wrapping them as its users would.

Imported by each peer's module in that peer's own interpreter: standard library only.
"""

from __future__ import annotations

import time

CPU_SECONDS = 0.05  # each of the CPU workload's tasks


def noop(i: int) -> None:
    """Nothing: what a task costs the tool is all there is."""


def extract(n: int) -> list[int]:
    """The ETL's first step: ``n`` rows."""
    return list(range(n))


def clean(row: int) -> int:
    """The ETL's second step, once per row."""
    return row * 2


def enrich(row: int) -> int:
    """The ETL's third step, once per row."""
    return row + 1


def load(rows: list[int]) -> int:
    """The ETL's last step: every row at once."""
    return sum(rows)


def burn(i: int) -> int:
    """50 ms of this thread's CPU time, in Python (holding the GIL, as pure-Python work does)."""
    end = time.thread_time() + CPU_SECONDS
    while time.thread_time() < end:
        pass
    return i


def expected(workload: str, size: int) -> int:
    """What each peer's run of ``workload`` at ``size`` must answer (checked after every run)."""
    if workload == "etl":
        return sum(enrich(clean(row)) for row in extract(size))
    return size  # noop: how many results; cpu: how many tasks
