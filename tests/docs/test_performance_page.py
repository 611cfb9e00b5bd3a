"""docs/performance.md: its peers table has every peer's row for every workload at the sizes
the session measures, and every option the page names is one the session, its driver or the
telemetry's instruction count takes."""

from __future__ import annotations

import re
import subprocess
import sys

from .examples import ROOT

PAGE = ROOT / "docs" / "performance.md"
COMPARE = ROOT / "benchmarks" / "peers" / "compare.py"
INSTRUCTIONS = ROOT / "packages" / "cascade-runtime" / "benchmarks" / "telemetry_instructions.py"
ENGINE_BENCH = ROOT / "packages" / "cascade-runtime" / "benchmarks" / "bench_engine.py"
ROUTES_BENCH = ROOT / "packages" / "cascade-runtime" / "benchmarks" / "bench_routes.py"
BEGIN = "<!-- peers: begin (written by benchmarks/peers/compare.py --write) -->"
END = "<!-- peers: end -->"


def test_the_table_has_every_peer_and_workload_at_the_default_sizes() -> None:
    """Six peers (Cascade and the existing engine each with and without MQTT, Prefect, Dask)
    by three workloads, as `compare.py` writes them without options."""
    page = PAGE.read_text(encoding="utf-8")
    section = page.split(BEGIN, 1)[1].split(END, 1)[0]
    rows = {
        tuple(cell.strip() for cell in line.strip("|").split("|")[:2])
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| workload |")
    }
    peers = ["Cascade", "Cascade, MQTT", "existing Cascade", "existing Cascade, MQTT"]
    peers += ["Prefect 3", "Dask, threads"]
    workloads = [
        "2,000 no-op tasks",
        "ETL, 100 items mapped through 4 steps",
        "200 tasks of 50 ms CPU",
    ]
    assert rows == {(workload, peer) for workload in workloads for peer in peers}
    assert re.search(r"Measured \d{4}-\d\d-\d\d on \d+ cores, ", section)


def test_every_option_the_page_names_is_taken() -> None:
    """`--existing` by the session, the rest by the driver, the instruction count, the
    engine's bench or the routers' bench (their --help)."""
    page = PAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", page))
    taken = {"--existing"}
    for script in (COMPARE, INSTRUCTIONS, ENGINE_BENCH, ROUTES_BENCH):
        done = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, check=True
        )
        taken |= set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", done.stdout))
    assert named
    assert named - taken == set()
