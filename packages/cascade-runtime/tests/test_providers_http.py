"""``cs.http.*`` against a real HTTP server on a free loopback port: what each sends, what
its result is whatever the status, how a request that gets no answer fails, and that
``task:http.get`` is steered like any task."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import Engine, Event, HttpResponse, TaskBlocked, TaskEvent, task


class Echo(BaseHTTPRequestHandler):
    """Answers every request with what it got, as JSON; ``/status/N`` answers status N."""

    def _answer(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        status = int(split.path.rsplit("/", 1)[1]) if split.path.startswith("/status/") else 200
        seen = {
            "method": self.command,
            "path": split.path,
            "query": parse_qs(split.query),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
        }
        data = json.dumps(seen).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", "yes")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """An echo server of the test's own on a free loopback port: its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


@task
def later(value: object) -> object:
    return value


@task
def seen(response: HttpResponse) -> dict[str, object]:
    result: dict[str, object] = response.json()
    return result


def test_get_gives_the_whole_answer(server: str) -> None:
    """``http.get`` sends params and headers; its result is the status, headers and body."""
    response = cs.run(cs.http.get(later(f"{server}/a"), params={"q": "1"}, headers={"X-T": "t"}))
    assert isinstance(response, HttpResponse)
    assert (response.status, response.ok) == (200, True)
    assert response.headers["x-echo"] == "yes"
    echoed = response.json()
    assert (echoed["method"], echoed["path"], echoed["query"]) == ("GET", "/a", {"q": ["1"]})
    assert echoed["headers"]["x-t"] == "t"
    assert response.text().startswith("{")
    assert response.url == f"{server}/a?q=1"


def test_post_put_delete_and_request_send_their_bodies(server: str, tmp_path: Path) -> None:
    """JSON, form data, raw bytes and files go as the Cascade engine sent them."""
    upload = tmp_path / "report.txt"
    upload.write_text("file body", encoding="utf-8")
    posted, form, put, deleted, patched = cs.run(
        [
            seen(cs.http.post(f"{server}/p", json={"a": later(1)})),
            seen(cs.http.post(f"{server}/f", data={"k": "v"}, files={"up": upload})),
            seen(cs.http.put(f"{server}/u", data=b"raw")),
            seen(cs.http.delete(f"{server}/d", headers={"X-Why": "done"})),
            seen(cs.http.request(f"{server}/r", method="patch", json=[1])),
        ]
    )
    assert (posted["method"], json.loads(str(posted["body"]))) == ("POST", {"a": 1})
    assert "multipart/form-data" in str(form["headers"])
    assert 'name="k"' in str(form["body"])
    assert "file body" in str(form["body"])
    assert 'filename="report.txt"' in str(form["body"])
    assert (put["method"], put["body"]) == ("PUT", "raw")
    assert deleted["method"] == "DELETE"
    assert deleted["headers"]["x-why"] == "done"
    assert (patched["method"], patched["body"]) == ("PATCH", "[1]")


def test_an_error_status_is_a_response_not_a_failure(server: str) -> None:
    """A 404 or a 503 completes the task (a later task decides); ``raise_for_status`` fails."""
    response = cs.run(cs.http.get(f"{server}/status/503"))
    assert (response.status, response.ok) == (503, False)
    with pytest.raises(cs.HttpStatusError, match="HTTP 503") as raised:
        response.raise_for_status()
    assert raised.value.status == 503

    @task
    def checked(response: HttpResponse) -> int:
        return response.raise_for_status().status

    with pytest.raises(cs.TaskFailedError) as failed:
        cs.run(checked(cs.http.get(f"{server}/status/404")))
    assert isinstance(failed.value.exception, cs.HttpStatusError)
    assert cs.run(checked(cs.http.get(f"{server}/status/204"))) == 204


def test_no_answer_fails_the_task_and_is_retried() -> None:
    """A refused connection fails ``http.get`` with httpx2's error, after its retries."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    events: list[Event] = []
    engine = Engine()
    engine.events.subscribe(events.append)
    target = cs.http.get(f"http://127.0.0.1:{port}/", timeout=5).with_retry(max_attempts=2, delay=0)
    with pytest.raises(cs.TaskFailedError) as raised:
        asyncio.run(engine.run(target))
    assert raised.value.task_name == "http.get"
    assert type(raised.value.exception).__name__ == "ConnectError"
    assert type(raised.value.exception).__module__.split(".")[0] == "httpx2"  # the product's one
    states = [e.state for e in events if isinstance(e, TaskEvent)]
    assert states.count("RETRYING") == 1


async def test_a_pause_of_http_get_holds_it(server: str) -> None:
    """``task:http.get`` paused over the broker holds the request until it is cleared."""
    broker = InMemoryBroker()
    controller = InMemoryConnector(broker, presence=False)
    await controller.connect()
    events: list[Event] = []
    blocked = asyncio.Event()

    def record(event: Event) -> None:
        events.append(event)
        if isinstance(event, TaskBlocked) and event.task_name == "http.get":
            blocked.set()

    pause = Constraint.pause("task:http.get")
    topic = constraint_topic(pause.scope, pause.type)
    await controller.publish(topic, pause, qos=1, retain=True)
    await broker.idle()
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    engine.events.subscribe(record)
    run = asyncio.create_task(engine.run(cs.http.get(f"{server}/held")))
    await asyncio.wait_for(blocked.wait(), 10)
    states = [e.state for e in events if isinstance(e, TaskEvent) and e.task_name == "http.get"]
    assert states == ["BLOCKED"]
    await controller.publish(topic, b"", qos=1, retain=True)
    await broker.idle()
    response = await asyncio.wait_for(run, 30)
    assert response.json()["path"] == "/held"
    states = [e.state for e in events if isinstance(e, TaskEvent) and e.task_name == "http.get"]
    assert states == ["BLOCKED", "RUNNING", "COMPLETED"]
    await controller.disconnect()
