"""Durations on a screen: the CLI's and the dashboard's say the same, rounded to their last unit;
and times in a table's cell, with their date where it is not today."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cascade.cli.rendering._times import TimeFormat, duration

CASES = {
    0.0: "0.0s",
    12.34: "12.3s",
    59.96: "1m00s",
    245.0: "4m05s",
    299.99999999: "5m00s",  # a TTL of 300 s, as expires_at - issued_at computes it
    300.0: "5m00s",
    7500.0: "2h05m",
    7199.6: "2h00m",
    273600.0: "3d04h",
}
FORMAT_JS = (
    Path(__file__).resolve().parents[1]
    / "../cascade-dashboard/src/cascade/dashboard/static/format.js"
)


@pytest.mark.parametrize(("seconds", "shown"), CASES.items())
def test_a_duration_is_rounded_to_its_last_unit(seconds: float, shown: str) -> None:
    """300 s is 5m00s, never 4m59s; a minute less a little is a minute."""
    assert duration(seconds) == shown


def test_the_dashboard_shows_durations_as_the_cli_does() -> None:
    """The page's seconds(), run by node on the same values, says what duration() says."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs)")
    source = FORMAT_JS.read_text(encoding="utf-8")
    function = re.search(r"^export (function seconds\(value\) \{.*?^\})", source, re.S | re.M)
    assert function is not None
    script = function[1] + f"\nconsole.log(JSON.stringify({list(CASES)}.map(seconds)));"
    shown = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout) == list(CASES.values())


def test_a_cell_has_the_date_where_it_is_not_today() -> None:
    """Today (in the screen's zone, not UTC) only the time; another day of this year its month
    and day, in English; another year, ISO."""
    pacific = timezone(timedelta(hours=-8))
    times = TimeFormat(datetime(2026, 11, 24, 18, 0, tzinfo=pacific).timestamp(), pacific)

    def short(when: datetime) -> str:
        return times.short(when.timestamp())

    assert short(datetime(2026, 11, 24, 0, 5, tzinfo=pacific)) == "00:05:00"
    assert short(datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)) == "17:00:00"  # UTC's 25th
    assert short(datetime(2026, 11, 23, 23, 59, tzinfo=pacific)) == "Nov 23 23:59"
    assert short(datetime(2026, 3, 5, 7, 0, tzinfo=pacific)) == "Mar  5 07:00"
    assert short(datetime(2025, 11, 24, 18, 0, tzinfo=pacific)) == "2025-11-24 18:00"
    assert times.short(1e14) == "beyond year 9999"
