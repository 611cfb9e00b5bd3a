"""A real Prometheus scrapes a team's `cascade dashboard` (with its bearer token, as a person of
the roles file over global) and `cascade record --metrics-listen` (real processes on the test
broker) with the scrape config and alert rules of docs/prometheus/, while a real engine runs a
workflow: the counters it reports equal the run's counts, and every metric docs/metrics.md names
is in the scrape. The dashboard's /metrics answers 401 without a token and 403 to a viewer of
one project, as docs/metrics.md says."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.runtime import Engine, LogForwarding, RetryPolicy, TaskFailedError, task
from cascade.testkit import (
    NO_PROMETHEUS,
    BrokerEndpoint,
    PrivatePrometheus,
    prometheus_path,
    sigint_default,
)

CASCADE = [sys.executable, "-m", "cascade.cli"]
DOCS = Path(__file__).resolve().parents[4] / "docs"
pytestmark = pytest.mark.skipif(prometheus_path() is None, reason=NO_PROMETHEUS)


@task
async def extract(n: int) -> int:
    logging.getLogger("it.metrics").warning("extracting %d", n)  # 1 line kept, 1 dropped
    logging.getLogger("it.metrics").warning("extracted %d", n)
    await asyncio.sleep(0.3)  # long enough for heartbeats
    return n


@task
async def validate(values: list[int]) -> list[int]:
    raise ValueError(f"checksum mismatch in {len(values)} partitions")


@task
async def report(values: list[int]) -> int:
    return len(values)


_attempts: dict[str, int] = {}


@task(retry=RetryPolicy(max_attempts=2))
async def flaky(key: str) -> str:
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise ConnectionError("the first attempt fails")
    return key


def _start(
    args: list[str], lines: int, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], list[str]]:
    """A `cascade` process and the first ``lines`` lines it prints (printed once it serves)."""
    process = subprocess.Popen(
        [*CASCADE, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else {**os.environ, **env},
        preexec_fn=sigint_default,  # a Ctrl-C before its handlers are set still ends it
    )
    assert process.stdout is not None
    printed = [process.stdout.readline() for _ in range(lines)]
    if process.poll() is not None:
        raise AssertionError(f"{args[0]} ended: {printed} {process.communicate()[1]}")
    return process, printed


def _stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, then what it wrote to stderr (it must end with 0)."""
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    return err


# Prometheus is a person of the team's roles file, a viewer over global (the metrics count every
# project); vera sees one project only
ROLES = """
[[grant]]
role = "viewer"
scopes = ["global"]
people = ["prometheus"]

[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["vera"]
"""
TOKENS = {"prometheus": secrets.token_urlsafe(24), "vera": secrets.token_urlsafe(24)}


@pytest.fixture
def readers(mqtt_broker: BrokerEndpoint, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A team's dashboard and a recorder on the test broker: each one's metrics target
    (host:port)."""
    broker = f"{mqtt_broker.host}:{mqtt_broker.port}"
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES, encoding="utf-8")
    tokens = " ".join(f"{name}={secret}" for name, secret in TOKENS.items())
    # (its history: none here, the default in the test's own data directory)
    dashboard, printed = _start(
        ["dashboard", "--host", broker, "--listen", "127.0.0.1:0", "--roles", str(roles)],
        3,  # its history, its access audit's, then its address
        env={"CASCADE_DASHBOARD_TOKEN": tokens},
    )
    try:
        found = re.search(r"on http://(127\.0\.0\.1:\d+)/", printed[2])
        assert found, printed
        recorder, said = _start(
            ["record", "--host", broker, "--db", str(tmp_path / "h.sqlite3"),
             "--metrics-listen", "127.0.0.1:0"], 2,
        )  # fmt: skip
        try:
            served = re.fullmatch(r"metrics on http://(127\.0\.0\.1:\d+)/metrics\n", said[1])
            assert served, said
            yield {"cascade-dashboard": found[1], "cascade-recorder": served[1]}
        finally:
            _stop(recorder)
    finally:
        _stop(dashboard)


def _config(targets: dict[str, str], token_file: Path) -> str:
    """docs/prometheus/prometheus.yml, scraping the test's targets every second, the
    dashboard with Prometheus's token (in ``token_file``)."""
    text = (DOCS / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    token = "/etc/prometheus/cascade-dashboard.token"
    for documented, real in (("15s", "1s"), ("127.0.0.1:8787", targets["cascade-dashboard"]),
                             ("127.0.0.1:9464", targets["cascade-recorder"]),
                             (token, str(token_file))):  # fmt: skip
        assert documented in text, f"docs/prometheus/prometheus.yml no longer has {documented}"
        text = text.replace(documented, real)
    return text


def _documented_metrics() -> set[str]:
    """The metrics docs/metrics.md lists in its table (``| `cascade_...` | type | ...``)."""
    page = (DOCS / "metrics.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(cascade_[a-z_]+)` \|", page, flags=re.MULTILINE))


async def _workflow(broker: BrokerEndpoint, project: str) -> None:
    """Five extracts complete, flaky completes on its second attempt, validate fails, report
    is skipped; the run fails."""
    connector = MqttConnector(broker.host, broker.port, source_id=f"engine-{project}")
    engine = Engine(
        connector,
        project_id=project,
        heartbeat_interval=0.2,
        logs=LogForwarding(max_lines_per_task=1),
    )
    with pytest.raises(TaskFailedError):
        await engine.run([report(validate([extract(n) for n in range(5)])), flaky(project)])


def test_a_teams_dashboard_answers_metrics_to_a_reader_over_global_only(
    readers: dict[str, str],
) -> None:
    """As docs/metrics.md says: 401 without a token, 403 to a viewer of one project, 200 with
    the token of a person over global."""
    url = f"http://{readers['cascade-dashboard']}/metrics"

    def status(who: str | None) -> int:
        headers = {"Authorization": f"Bearer {TOKENS[who]}"} if who else {}
        return httpx.get(url, headers=headers, timeout=10).status_code

    assert [status(None), status("vera"), status("prometheus")] == [401, 403, 200]


def test_prometheus_scrapes_the_runs_counts(
    readers: dict[str, str], mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    """Prometheus's answers equal the run's counts, for the dashboard and the recorder alike."""
    rules = (DOCS / "prometheus" / "cascade-rules.yml").read_text(encoding="utf-8")
    token_file = tmp_path / "cascade-dashboard.token"
    token_file.write_text(TOKENS["prometheus"], encoding="utf-8")
    config = _config(readers, token_file)
    with PrivatePrometheus(config, {"cascade-rules.yml": rules}) as prometheus:
        prometheus.wait_for('up{job=~"cascade-.*"} == 1', lambda up: len(up) == 2)
        project = f"it-metrics-{uuid.uuid4().hex[:8]}"
        asyncio.run(_workflow(mqtt_broker, project))
        expected = {
            (job, task_name, state): n
            for job in readers
            for task_name, state, n in (
                ("extract", "COMPLETED", 5), ("validate", "FAILED", 1), ("report", "SKIPPED", 1),
                ("flaky", "COMPLETED", 1),
            )
        }  # fmt: skip

        def tasks(result: list[dict[str, object]]) -> dict[tuple[str, str, str], float]:
            counts = {}
            for sample in result:
                labels = sample["metric"]
                value = sample["value"]
                assert isinstance(labels, dict)
                assert isinstance(value, list)
                counts[(labels["job"], labels["task"], labels["state"])] = float(value[1])
            return counts

        got = prometheus.wait_for(
            "sum by (job, task, state) (cascade_tasks_total)", lambda r: tasks(r) == expected
        )
        assert tasks(got) == expected
        runs = prometheus.wait_for(
            f'cascade_runs_total{{project="{project}"}}', lambda r: len(r) == 2
        )
        assert {(r["metric"]["job"], r["metric"]["state"], r["value"][1]) for r in runs} == {
            (job, "Failed", "1") for job in readers
        }
        retries = prometheus.query('cascade_task_retries_total{task="flaky"}')
        assert sorted(float(r["value"][1]) for r in retries) == [1.0, 1.0]
        durations = prometheus.query('cascade_task_duration_seconds_count{task="extract"}')
        assert sorted(float(r["value"][1]) for r in durations) == [5.0, 5.0]
        slow = prometheus.query('cascade_task_duration_seconds_bucket{task="extract",le="0.1"}')
        assert [float(r["value"][1]) for r in slow] == [0.0, 0.0]  # each slept 0.3 s
        online = prometheus.query(f'cascade_engine_online{{source="engine-{project}"}}')
        assert len(online) == 2
        # every documented metric, from one reader or the other: the task log lines from the
        # recorder, which reads every run's logs (the dashboard reads those of open runs)
        names = prometheus.wait_for(
            'count by (__name__) ({job=~"cascade-.*"})',
            lambda r: _documented_metrics() <= _scraped(r),
        )
        assert _documented_metrics() <= _scraped(names)  # (and the rules loaded: it started)
        lines = prometheus.query(
            f'cascade_log_lines_total{{job="cascade-recorder",source="engine-{project}"}}'
        )
        assert [float(r["value"][1]) for r in lines] == [5.0]


def _scraped(result: list[dict[str, dict[str, str]]]) -> set[str]:
    """Metric names in a scrape, a histogram's ``_bucket``/``_sum``/``_count`` as its own."""
    names = {sample["metric"]["__name__"] for sample in result}
    return names | {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}
