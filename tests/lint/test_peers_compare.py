"""benchmarks/peers/compare.py, the peers session's driver: its table, its rows without
numbers and the page it writes, on Cascade alone (nothing downloaded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cascade.testkit import mosquitto_path

ROOT = Path(__file__).resolve().parents[2]
COMPARE = ROOT / "benchmarks" / "peers" / "compare.py"
BEGIN = "<!-- peers: begin (written by benchmarks/peers/compare.py --write) -->"
END = "<!-- peers: end -->"


def rows_of(page: str) -> dict[tuple[str, str], list[str]]:
    """The table's rows by (workload, peer): their median, ratio and note cells."""
    rows = {}
    for line in page.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("workload", "---"):
            rows[cells[0], cells[1]] = cells[2:]
    return rows


def test_a_small_table_of_cascade_and_peers_it_cannot_run(tmp_path: Path) -> None:
    """Cascade's rows are measured (its own ratio 1.00), the MQTT rows too where mosquitto is
    installed; a peer whose interpreter lacks it, or that has none, keeps its rows, saying why;
    --write replaces the page's section between its markers and keeps the rest."""
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nabove\n\n{BEGIN}\nan old table\n{END}\n\nbelow\n")
    done = subprocess.run(
        [sys.executable, str(COMPARE), "--peers", "cascade,cascade-mqtt,prefect,dask",
         "--repeats", "1", "--noop", "20", "--etl", "5", "--cpu", "2",
         f"--interpreter=prefect={sys.executable}", "--write", str(page)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = page.read_text(encoding="utf-8")
    assert written.startswith("# Performance\n\nabove\n\n" + BEGIN)
    assert written.endswith(END + "\n\nbelow\n")
    assert "an old table" not in written
    assert "median of 1 run each" in written
    assert "cascade-runtime" in written  # the versions
    rows = rows_of(written)
    workloads = ["20 no-op tasks", "ETL, 5 items mapped through 4 steps", "2 tasks of 50 ms CPU"]
    assert set(rows) == {
        (workload, peer)
        for workload in workloads
        for peer in ("Cascade", "Cascade, MQTT", "Prefect 3", "Dask, threads")
    }
    for workload in workloads:
        median, ratio, note = rows[workload, "Cascade"]
        assert float(median) > 0
        assert (ratio, note) == ("1.00", "")
        median, ratio, note = rows[workload, "Cascade, MQTT"]
        if mosquitto_path() is None:
            assert (median, note) == ("—", "mosquitto is not installed")
        else:
            assert float(median) > 0
            assert float(ratio) > 0
        assert rows[workload, "Prefect 3"] == [
            "—", "—", "ModuleNotFoundError: No module named 'prefect'"
        ]  # fmt: skip
        assert rows[workload, "Dask, threads"] == [
            "—", "—", "no interpreter given (--interpreter dask=PYTHON)"
        ]  # fmt: skip
    assert written.count("| 2 tasks of 50 ms CPU | Cascade | ") == 1  # printed once, not twice


def test_an_unknown_peer_is_refused_by_name() -> None:
    """A misspelt peer exits 2 naming the peers there are."""
    done = subprocess.run(
        [sys.executable, str(COMPARE), "--peers", "cascade,prefekt"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "unknown peer 'prefekt'" in done.stderr
    assert "cascade, cascade-mqtt, existing, existing-mqtt, prefect, dask" in done.stderr
