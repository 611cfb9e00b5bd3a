"""docs/metrics.md's alert rules and scrape config are the files the tests use, promtool checks
and unit-tests the rules, and every metric the page lists is in an exporter's scrape."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.metrics import CascadeMetrics
from cascade.reader import ReaderModel
from cascade.runtime import Engine, RetryPolicy, TaskFailedError, task

from .examples import ROOT

PROMETHEUS = ROOT / "docs" / "prometheus"
PAGE = ROOT / "docs" / "metrics.md"
NO_PROMTOOL = "promtool is not installed (Debian: apt-get install prometheus)"


def _yaml_blocks(page: str) -> list[str]:
    return [block + "\n" for block in re.findall(r"^```yaml\n(.*?)\n```$", page, re.M | re.S)]


def test_the_page_shows_the_files_the_tests_use() -> None:
    """The page's scrape config and rules are, byte for byte, the files in docs/prometheus/."""
    blocks = _yaml_blocks(PAGE.read_text(encoding="utf-8"))
    files = [PROMETHEUS / "prometheus.yml", PROMETHEUS / "cascade-rules.yml"]
    assert blocks == [path.read_text(encoding="utf-8") for path in files]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(NO_PROMTOOL)
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules`: the rules are valid."""
    result = _promtool("check", "rules", "cascade-rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_promtool_tests_the_rules() -> None:
    """`promtool test rules`: each alert fires when it should and not before."""
    result = _promtool("test", "rules", "cascade-rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_tested_alert_is_a_rule() -> None:
    """The test file exercises every alert the rules file defines."""
    rules = set(re.findall(r"- alert: (\w+)", (PROMETHEUS / "cascade-rules.yml").read_text()))
    tested = set(
        re.findall(r"alertname: (\w+)", (PROMETHEUS / "cascade-rules.test.yml").read_text())
    )
    assert rules == tested


@task
async def ok(n: int) -> int:
    return n


@task
async def broken(values: list[int]) -> int:
    raise ValueError("no")


@task
async def after(n: int) -> int:
    return n


_tries: list[int] = []


@task(retry=RetryPolicy(max_attempts=2))
async def flaky() -> int:
    _tries.append(1)
    if len(_tries) == 1:
        raise ConnectionError("once")
    return 1


async def test_every_metric_on_the_page_is_exported() -> None:
    """A run through the in-memory broker: each metric the page's table lists is in a scrape,
    and the page lists each metric the scrape has."""
    broker = InMemoryBroker()
    metrics = CascadeMetrics(ReaderModel())
    async with InMemoryConnector(broker, presence=False) as reader:
        for topic in ("cascade/telemetry/#", "cascade/status/+", "cascade/constraints/#"):
            await reader.subscribe(topic, metrics.apply)
        engine = Engine(InMemoryConnector(broker, source_id="docs-engine"))
        with pytest.raises(TaskFailedError):
            await engine.run([after(broken([ok(1), ok(2)])), flaky()])
        await broker.idle()
    page = PAGE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(cascade_[a-z_]+)` \|", page, flags=re.M))
    # `cascade record`'s own (its table; packages/cascade-cli/tests/test_record_metrics.py)
    listed = {name for name in listed if not name.startswith("cascade_recorder_")}
    scraped = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in text_string_to_metric_families(metrics.render().decode())
        if not family.name.endswith("_created")  # prometheus-client's, listed under the table
    }
    assert listed == scraped
