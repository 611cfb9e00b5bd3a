"""A `cascade dashboard` process for the dashboard's benchmarks, and what it costs: its CPU
seconds and resident memory, read from ``/proc``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["cpu_seconds", "rss_mb", "start_dashboard"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(found.group(1)) / 1024 if found else float("nan")


def start_dashboard(
    port: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """A dashboard process on the broker at ``port`` (``env`` added), and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cascade.cli", "dashboard", "--port", str(port),
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"cascade dashboard on (http://\S+/)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError("the dashboard did not start")
