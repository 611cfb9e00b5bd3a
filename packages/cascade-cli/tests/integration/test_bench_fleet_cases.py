"""`nox -s fleet`'s cases (issues 51 and 66) run end to end on a tiny fleet, so that the bench
cannot rot: every case in one invocation, its table of figures beside the targets; and a case
beside a baseline's dashboard, issue 66's aims of both side by side."""

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
CASES = ("start", "summaries", "without-10", "without-100", "restart", "late", "issue66",
         "issue66-without")  # fmt: skip
COLUMNS = 9  # the case, six figures against their targets, the views, its own
AIMS_COLUMNS = 8  # the case, whose dashboard, two aims, CPU, per message, per answer, load

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


@pytest.mark.timeout(600)
def test_a_case_beside_a_baseline_prints_the_aims_of_both() -> None:
    """``--baseline REV``: the case with REV's dashboard, then this tree's; the aims' table has
    a row of each, the /api/state p95 and the stream judged, the CPU per message and per answer
    and the load measured."""
    command = [
        sys.executable, str(SCRIPT), "--engines", "20", "--rate", "200", "--seconds", "4",
        "--warmup", "2", "--readers", "dashboard", "--busy-rate", "0", "--pages", "1",
        "--cases", "issue66", "--baseline", "HEAD",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=560, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    aims = [
        cells
        for line in done.stdout.splitlines()
        if line.startswith("| issue66 |")
        and len(cells := [c.strip() for c in line.strip("|").split("|")]) == AIMS_COLUMNS
    ]
    assert [cells[1] for cells in aims] == ["base HEAD", "this tree"], done.stdout
    for cells in aims:
        assert all(re.search(r"\((NOT )?met\)$", cell) for cell in cells[2:4]), cells
        assert re.fullmatch(r"\d+ µs", cells[5]), cells
        assert re.fullmatch(r"[\d.]+ ms", cells[6]), cells
        assert re.fullmatch(r"[\d.]+", cells[7]), cells
