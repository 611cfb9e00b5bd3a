"""The fleet benchmark runs end to end on a few engines (so the script cannot rot)."""

from __future__ import annotations

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

pytestmark = [
    skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER),
    skip_on_family("nats", NOT_THE_SHARED_BROKER),
    pytest.mark.skipif(mosquitto_path() is None, reason=NO_MOSQUITTO),
]


def test_bench_fleet_quick_prints_both_tables() -> None:
    """`bench_fleet.py --quick --engines 3` ends by itself and prints both tables and the aim."""
    command = [sys.executable, str(SCRIPT), "--quick", "--engines", "3", "--wait", "5"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=100, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "A: one mosquitto: 3 engines started" in out, out
    assert "B: engines on an edge, control on the centre: 3 engines started" in out, out
    assert "pause -> last task start" in out, out
    assert "pause p99 <= 100 ms for 100 engines on one mosquitto" in out, out
