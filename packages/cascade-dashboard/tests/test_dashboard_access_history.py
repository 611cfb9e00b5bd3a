"""The access audit a team's dashboard writes into its history cannot be written by its
subjects: a path with a newline or an escape sequence stays one inert JSON line in the log and
inert text in `cascade audit`, and a person looping on refusals writes a few rows a minute,
whose counts add up to every refusal."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.control.access import Roles
from cascade.dashboard import DashboardHub, DashboardSettings, ProxySignIn, create_app
from cascade.dashboard.auth import AccessLog, sink_of
from cascade.history import History

ROLES = Roles.parse('[[grant]]\nrole = "admin"\nscopes = ["global"]\npeople = ["root"]\n')
NOBODY = {"x-test-user": "nobody@example.com"}  # signed in, no role
FORGED = "/api/tokens/1%0Aallowed%20admin@example.com%20(oidc)%20pause%20global"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def history(path: Path) -> Iterator[History]:
    with History(path, mode="write") as history:
        yield history


@pytest.fixture
def audit(history: History) -> AccessLog:
    return AccessLog(sink_of(history))


@pytest.fixture
async def http(hub: DashboardHub, audit: AccessLog) -> AsyncIterator[httpx.AsyncClient]:
    sign_in = ProxySignIn([ip_network("127.0.0.1/32")], "x-test-user")
    app_ = create_app(
        hub, DashboardSettings(token=None, roles=ROLES, sign_in=sign_in), access_log=audit
    )
    transport = httpx.ASGITransport(app=app_)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


def audit_text(path: Path) -> str:
    context = CliContext(console=Console(width=250))
    result = CliRunner().invoke(app, ["audit", "--db", str(path)], obj=context)
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_forged_line_and_an_escape_sequence_stay_inert_in_the_log_and_the_audit(
    http: httpx.AsyncClient, audit: AccessLog, path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A newline that would start a line reading as an allowed admin pause, and ESC[2J: each log
    record is one JSON object on one line (no control character), refused, naming nobody; in
    `cascade audit` neither reaches the terminal raw."""
    with caplog.at_level(logging.INFO, "cascade.dashboard.access"):
        forged = await http.delete(FORGED, headers=NOBODY)
        await audit.flush()  # a row of its own, not folded with the next
        escaped = await http.delete("/api/tokens/%1B%5B2J%1B%5D0;pwned%07", headers=NOBODY)
    await audit.flush()
    assert (forged.status_code, escaped.status_code) == (403, 403)
    lines = [r.getMessage() for r in caplog.records if r.name == "cascade.dashboard.access"]
    assert lines
    for line in lines:
        assert line.isprintable(), line
        assert line.isascii(), line
        row = json.loads(line)
        assert (row["outcome"], row["who"]) == ("refused", "nobody@example.com")
    assert not any(line.startswith("allowed") or "\nallowed" in line for line in lines)
    shown = audit_text(path)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\\x1b" in shown
    assert "\\x0a" in shown
    assert not any(line.lstrip().startswith("allowed") for line in shown.splitlines())


async def test_300_refusals_are_a_few_rows_whose_counts_add_up_to_300(
    http: httpx.AsyncClient, audit: AccessLog, history: History, path: Path
) -> None:
    """A signed-in person with no role asks 300 times (on 100 paths): a bounded number of
    refused rows (one a kind a minute, at most 17 a minute), counting 300 in all; `cascade
    audit` shows the count."""
    for i in range(300):
        answer = await http.get(f"/api/history/run?id={i % 100}", headers=NOBODY)
        assert answer.status_code == 403
    await audit.flush()
    refused = [e for e in history.audit(limit=1000) if e.action == "refused"]
    assert 1 <= len(refused) <= 2 * 17  # the loop may cross a minute
    assert sum(e.count for e in refused) == 300
    assert any(e.count > 1 and e.last_at is not None for e in refused)
    assert "refused \u00d7" in audit_text(path)


async def test_a_folds_count_reaches_the_history_without_a_flush(
    http: httpx.AsyncClient, history: History
) -> None:
    """Five refusals, then nothing: within seconds the history's one row counts five (the
    dashboard writes a fold's count a second after it grows, not only at shutdown)."""
    for _ in range(5):
        assert (await http.get("/api/state", headers=NOBODY)).status_code == 403

    def counted() -> list[int]:
        return [e.count for e in history.audit(limit=10) if e.action == "refused"]

    async def settled() -> None:
        while sum(counted()) != 5:  # noqa: ASYNC110 - the history is polled: no event to await
            await asyncio.sleep(0.05)

    await asyncio.wait_for(settled(), 10)
    assert len(counted()) <= 2
