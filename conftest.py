"""Checks that apply to every package's tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> AsyncIterator[None]:
    """Fail an async test that leaves tasks running behind it."""
    yield
    current = asyncio.current_task()
    leaked = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in leaked:
        task.cancel()
    if leaked:
        await asyncio.gather(*leaked, return_exceptions=True)
        pytest.fail(f"test left tasks running: {leaked!r}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each failed test with the first line of its error, whole: pytest cuts its own summary
    lines to the terminal's width outside CI (``FAILED tests/...::test_x - R...``), and
    ``dev.py test`` closes with these lines (it keeps the longest of a test's)."""
    reports = [
        *terminalreporter.stats.get("failed", []),
        *terminalreporter.stats.get("error", []),
    ]
    if not reports:
        return
    terminalreporter.section("failed, with the first line of each error")
    for report in reports:
        word = "FAILED" if report.when == "call" else "ERROR"
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr or "")
        first = next((line.strip() for line in message.splitlines() if line.strip()), "")
        terminalreporter.write_line(f"{word} {report.nodeid}" + (f" - {first}" if first else ""))
