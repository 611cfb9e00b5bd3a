"""Where the metrics are served: the dashboard's /metrics, and `cascade record`'s own server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, create_app
from cascade.metrics import CONTENT_TYPE, CascadeMetrics, MetricsServer, bind
from cascade.reader import ReaderModel
from cascade.runtime import Engine, task


@task
async def double(n: int) -> int:
    """A quick task."""
    return n * 2


async def test_dashboard_serves_metrics_without_a_token(
    broker: InMemoryBroker, hub: DashboardHub
) -> None:
    """GET /metrics needs no token (read-only, like the page) and counts the hub's messages."""
    engine = Engine(InMemoryConnector(broker, source_id="engine-a"))
    await engine.run([double(1), double(2)])
    await broker.idle()
    transport = httpx.ASGITransport(app=create_app(hub, DashboardSettings(token="s3cret")))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        response = await http.get("/metrics")
        refused = await http.get("/metrics", headers={"host": "evil.example"})
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    assert 'cascade_tasks_total{state="COMPLETED",task="double"} 2.0' in response.text
    assert 'cascade_runs_total{project="default",state="Succeeded"} 1.0' in response.text
    assert refused.status_code == 400  # the Host check (DNS rebinding) still applies


async def _request(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    writer.write_eof()  # all it sends
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_the_recorders_server_answers_get_metrics_only() -> None:
    """200 with the metrics for GET /metrics; 404, 405, 400 and 431 otherwise; stop closes it."""
    metrics = CascadeMetrics(ReaderModel())
    server = MetricsServer(bind("127.0.0.1", 0), metrics.render, CONTENT_TYPE)
    await server.start()
    port = server.port
    try:
        ok = await _request(port, b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        missing = await _request(port, b"GET / HTTP/1.1\r\n\r\n")
        post = await _request(port, b"POST /metrics HTTP/1.1\r\n\r\n")
        junk = await _request(port, b"\x16\x03\x01 hello\r\n\r\n")
        cut = await _request(port, b"GET /metr")  # the client gives up half-way
        huge = await _request(
            port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 64 * 1024 + b"\r\n\r\n"
        )
    finally:
        await server.stop()
    head, _, body = ok.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"content-type: {CONTENT_TYPE}".encode() in head
    assert b"cascade_runs_running 0.0" in body
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert post.startswith(b"HTTP/1.1 405 ")
    assert junk.startswith(b"HTTP/1.1 400 ")
    assert cut.startswith(b"HTTP/1.1 400 ")
    assert huge.startswith(b"HTTP/1.1 431 ")
    assert server.served == 1
    with pytest.raises(ConnectionRefusedError):
        await _request(port, b"GET /metrics HTTP/1.1\r\n\r\n")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nope", "--metrics-listen must be HOST:PORT, e.g. 127.0.0.1:8787, not 'nope'"),
        ("127.0.0.1:99999", "--metrics-listen must be HOST:PORT"),
        ("a\tb:80", "--metrics-listen: 'a\\tb' is not a host name or address"),
    ],
)
def test_record_bad_metrics_address_is_a_usage_error(value: str, message: str) -> None:
    """A bad --metrics-listen is a one-line usage error (exit 2) before anything starts."""
    result = CliRunner().invoke(
        app, ["record", "--db", "/nonexistent/h.db", "--metrics-listen", value], obj=CliContext()
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_record_metrics_address_in_use_is_one_line(tmp_path: Path) -> None:
    """An address that cannot be bound ends `cascade record` with 1 and one line saying why."""
    broker = InMemoryBroker()
    taken = bind("127.0.0.1", 0)
    try:
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        context = CliContext(connector_factory=lambda _: InMemoryConnector(broker, presence=False))
        result = CliRunner().invoke(
            app,
            ["record", "--db", str(tmp_path / "h.db"), "--duration", "0",
             "--metrics-listen", address],
            obj=context,
        )  # fmt: skip
    finally:
        taken.close()
    assert result.exit_code == 1
    assert f"cascade: cannot listen on {address}: Address already in use" in result.output
    assert "Traceback" not in result.output
