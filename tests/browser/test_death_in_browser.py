"""A run whose engine dies, on the dashboard in a real headless Chromium, without restarting the
dashboard: two servers of ``etl`` (its last step waits for a gate) share a results store (as
tests/faults/test_carry_on.py serves them); a run starts at one, its gate held; that server is
killed (SIGKILL of its process); the page shows the run lost at once, then "carried on as" the
run the other server carried it on as, whose page links back; the lost run's gate leaves
Decisions and the carry-on's gate is there instead; a decision posted on the lost run's gate is
answered at once with where the run went."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.testkit import BrokerEndpoint

from .conftest import ROOT, TOKEN, Dashboard
from .test_dashboard_in_browser import (
    attribute,
    click,
    css,
    go_to,
    no_script_errors,
    open_page,
    open_run,
    texts,
    wait,
)

pytestmark = pytest.mark.integration

SERVER = ROOT / "tests" / "faults" / "server_process.py"


class Servers:
    """The two serving processes: ``victim`` (the one the test kills) and ``survivor``."""

    def __init__(self, broker: BrokerEndpoint, results: Path) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.victim_source, self.survivor_source = f"server-a-{suffix}", f"server-b-{suffix}"
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(SERVER),
                    "--host",
                    broker.host,
                    "--port",
                    str(broker.port),
                    "--prefix",
                    "cascade",
                    "--source",
                    source,
                    "--results",
                    str(results),
                    "--tasks",
                    "3",
                    "--keepalive",
                    "2",
                    "--gate",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for source in (self.victim_source, self.survivor_source)
        ]
        self.victim = self.processes[0]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def servers(mqtt_broker: BrokerEndpoint) -> Generator[Servers, None, None]:
    with tempfile.TemporaryDirectory() as results:
        both = Servers(mqtt_broker, Path(results))
        yield both
        both.stop()


def api(dashboard: Dashboard, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """The dashboard's answer to ``method path`` (with the controls' token): status and JSON."""
    request = urllib.request.Request(
        dashboard.url.rstrip("/") + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def serving(dashboard: Dashboard, servers: Servers) -> bool:
    """Whether the dashboard has heard both servers say they serve ``etl``."""
    _, listed = api(dashboard, "GET", "/api/workflows")
    said = json.dumps(listed)
    return servers.victim_source in said and servers.survivor_source in said


def held_runs(driver: Any) -> list[str]:
    """The runs of the held tasks Decisions lists."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#held-tasks tr[data-run-id]')]"
        ".map(r => r.getAttribute('data-run-id'));"
    )
    return found


def test_a_killed_server_s_run_reads_lost_then_carried_on_and_its_gate_moves(
    browser: Any, dashboard: Dashboard, servers: Servers
) -> None:
    open_page(browser, dashboard)
    wait(browser, lambda d: serving(dashboard, servers))
    code, started = api(
        dashboard,
        "POST",
        "/api/workflows/etl/start",
        {"on": servers.victim_source, "reason": "nightly"},
    )
    assert code == 200, started
    lost = started["run_id"]
    go_to(browser, "decisions")
    wait(browser, lambda d: held_runs(d) == [lost])
    wait(browser, lambda d: d.find_element(By.ID, "attention-held").text == "1 held")
    gate = attribute(browser, f'#held-tasks tr[data-run-id="{lost}"]', "data-task-id")
    open_run(browser, lost)
    wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Running")
    wait(browser, lambda d: "ended" in texts(d, "#rp-facts dt"))

    os.kill(servers.victim.pid, signal.SIGKILL)
    servers.victim.wait(10)

    wait(browser, lambda d: d.find_element(By.ID, "rp-status").text == "Lost")
    facts = dict(zip(texts(browser, "#rp-facts dt"), texts(browser, "#rp-facts dd"), strict=True))
    assert "ended" not in facts  # no "ended: not yet"
    assert f"its engine {servers.victim_source} went offline" in facts["lost"]
    assert not browser.find_element(By.ID, "rp-cancel").is_displayed()
    wait(browser, lambda d: css(d, "#rp-lineage .carried-on-as a[data-run-id]"))
    carry_on = attribute(browser, "#rp-lineage .carried-on-as a[data-run-id]", "data-run-id")
    assert carry_on is not None
    assert carry_on != lost
    (said,) = texts(browser, "#rp-lineage .carried-on-as")
    assert said == f"carried on as {carry_on[:12]} at {servers.survivor_source}"
    repaints = browser.execute_script("return window.cascadeRepaints")
    wait(browser, lambda d: d.execute_script("return window.cascadeRepaints") > repaints + 3)
    later = dict(zip(texts(browser, "#rp-facts dt"), texts(browser, "#rp-facts dd"), strict=True))
    assert later["duration"] == facts["duration"]  # its clock stopped at the death

    # a decision on the lost run's gate: answered at once with where the run went
    code, refused = api(
        dashboard,
        "POST",
        f"/api/runs/{lost}/tasks/{gate}/decide",
        {"decision": "complete", "result": True},
    )
    assert code == 409, refused
    assert (refused["carried_on_as"], refused["link"]) == (carry_on, f"/runs/{carry_on}")

    # the carry-on's page links back to the run it carries on
    click(browser, "#rp-lineage .carried-on-as a[data-run-id]")
    wait(browser, lambda d: d.find_element(By.ID, "rp-id").text == carry_on)
    wait(
        browser,
        lambda d: (
            texts(d, "#rp-lineage .carried-on-from")
            == [f"carries on {lost[:12]}, lost with {servers.victim_source}"]
        ),
    )

    # its gate left Decisions, and the carry-on's is there instead
    go_to(browser, "decisions")
    wait(browser, lambda d: held_runs(d) == [carry_on])
    assert browser.find_element(By.ID, "attention-held").text == "1 held"

    # the Engines page: the dead server runs nothing, and says the run lost with it
    go_to(browser, "engines")
    row = f'#engines tr[data-source="{servers.victim_source}"]'
    wait(browser, lambda d: any("1 run lost (1 carried on)" in t for t in texts(d, row)))
    assert no_script_errors(browser) == []
