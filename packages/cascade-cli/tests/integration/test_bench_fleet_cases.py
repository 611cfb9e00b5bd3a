"""`nox -s fleet`'s cases (issue 51) run end to end on a tiny fleet, so that the bench cannot
rot: every case in one invocation, its table of figures beside the targets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cascade.testkit import (
    NO_MOSQUITTO,
    NOT_THE_SHARED_BROKER,
    mosquitto_path,
    skip_on_family,
)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fleet.py"
CASES = ("start", "summaries", "without-10", "without-100", "restart", "late")
COLUMNS = 9  # the case, six figures against their targets, the views, its own

pytestmark = [
    skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER),
    skip_on_family("nats", NOT_THE_SHARED_BROKER),
    pytest.mark.skipif(mosquitto_path() is None, reason=NO_MOSQUITTO),
]


@pytest.mark.timeout(600)
def test_every_case_runs_and_is_judged_against_the_targets() -> None:
    """Each case, 20 engines for a few seconds: one row each, every figure measured and said
    met or not, the views agreeing with the simulator (else the bench exits 1)."""
    command = [
        sys.executable, str(SCRIPT), "--engines", "20", "--rate", "200", "--seconds", "6",
        "--warmup", "2", "--readers", "dashboard,status", "--busy-rate", "0",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=560, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        cells[0].split(":")[0]: cells
        for line in done.stdout.splitlines()
        if line.startswith("| ")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) == COLUMNS
    }
    assert [name for name in rows if name in CASES] == list(CASES), done.stdout
    for name in CASES:
        figures = rows[name][1:8]
        assert all(re.search(r"\((NOT )?met\)$|^met$", cell) for cell in figures), rows[name]
        assert rows[name][7] == "met", rows[name]  # the views agree with the truth
    assert re.search(r"\d+ runs of 20 engines started in the fleet's first second",
                     rows["start"][8]), rows["start"]  # fmt: skip
    recovered = r"after its restart: first answer in [\d.]+ s, every engine counted in [\d.]+ s"
    assert re.search(recovered, rows["restart"][8]), rows["restart"]
    assert "readers started after the runs began" in done.stdout, done.stdout
