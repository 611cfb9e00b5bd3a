"""Notifications from a team's dashboard: its admins add, list and remove webhooks, whose URLs
are shown redacted; the dashboard's process posts a failed run to a real receiver; viewers and
operators are refused; every change is in the access audit; a webhook inside the dashboard's
network is refused (400 saying why) unless the dashboard was started allowing it; the
environment's proxy is posted through, as by ``cascade notify``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.dashboard import DashboardHub, DashboardSettings, Notifications, create_app
from cascade.dashboard.auth import AccessLog
from cascade.history import History
from cascade.notify import Destinations
from cascade.runtime import Engine, TaskFailedError, task
from cascade.testkit import ForwardProxy, WebhookReceiver

from .test_dashboard_api_tokens import (  # type: ignore[import-not-found]
    ROLES,
    ROOT,
    VERA,
    signed_in_by_header,
)

OLGA = {"x-test-user": "olga@example.com"}
LOOPBACK = Destinations(allow=["127.0.0.1"])  # the receivers' (the honest way to post inside)


@task
def load(rows: int) -> int:
    raise ValueError(f"row {rows} has a negative amount")


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3", mode="write") as history:
        yield history


@pytest.fixture(autouse=True)
def no_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the environment the tests run in (the receivers are on loopback)."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
async def notifications(hub: DashboardHub, history: History) -> AsyncIterator[Notifications]:
    notifications = Notifications(
        hub.connector, history, dashboard_url="http://dash.example", destinations=LOOPBACK
    )
    await notifications.start()
    yield notifications
    await notifications.stop()


ACCESS: list[tuple[str, str, str]] = []


@pytest.fixture
async def access_log() -> AccessLog:
    """The access audit's rows, (action, target, outcome) each."""
    ACCESS.clear()
    return AccessLog(lambda event: ACCESS.append((event.action, event.target, event.outcome)))


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


@pytest.fixture
async def http(
    hub: DashboardHub, history: History, notifications: Notifications, access_log: AccessLog
) -> AsyncIterator[httpx.AsyncClient]:
    settings = DashboardSettings(roles=ROLES, sign_in=signed_in_by_header(), history=history)
    app = create_app(hub, settings, access_log=access_log, api_tokens=history,
                     notifications=notifications)  # fmt: skip
    async with _client(app) as client:
        yield client


async def test_an_admins_webhook_is_posted_a_failed_run_and_shown_redacted(
    http: httpx.AsyncClient, broker: InMemoryBroker, receiver: WebhookReceiver, history: History,
    access_log: AccessLog,
) -> None:  # fmt: skip
    added = await http.post("/api/settings/webhooks", headers=ROOT, json={
        "url": receiver.url, "format": "generic", "events": ["run.failed"]})  # fmt: skip
    assert added.status_code == 201, added.text
    assert WebhookReceiver.SECRET not in added.text
    webhook = added.json()["webhook"]
    assert webhook["url"] == receiver.url.split("/services")[0] + "/…"
    assert (webhook["events"], webhook["created_by"]) == (["run.failed"], "root@example.com")
    with pytest.raises(TaskFailedError, match="negative"):
        await Engine(InMemoryConnector(broker, source_id="engine-a")).run(load(3))
    assert await asyncio.to_thread(receiver.wait_for, 1)
    [(_, posted)] = receiver.posts
    assert posted["event"] == "run.failed"
    assert posted["error_line"] == "ValueError: row 3 has a negative amount"
    assert posted["url"] == f"http://dash.example/runs/{posted['run_id']}"
    listed = await http.get("/api/settings/webhooks", headers=ROOT)
    assert listed.json() == {"webhooks": [webhook], "available": True}
    assert WebhookReceiver.SECRET not in listed.text
    removed = await http.delete(f"/api/settings/webhooks/{webhook['id']}", headers=ROOT)
    assert removed.status_code == 200, removed.text
    assert (await http.get("/api/settings/webhooks", headers=ROOT)).json()["webhooks"] == []
    with pytest.raises(TaskFailedError, match="negative"):
        await Engine(InMemoryConnector(broker, source_id="engine-b")).run(load(4))
    await broker.idle()
    assert len(receiver.posts) == 1  # the removed webhook's notifier posts no more
    await access_log.flush()
    shown = f"webhook:{webhook['id']}:{webhook['url']}"
    changes = [row for row in ACCESS if row[0] in ("webhook-add", "webhook-remove")]
    assert changes == [("webhook-add", shown, "allowed"), ("webhook-remove", shown, "allowed")]
    assert WebhookReceiver.SECRET not in str(ACCESS) + str(history.audit())


async def test_a_saved_webhook_is_run_when_the_dashboard_starts(
    hub: DashboardHub, broker: InMemoryBroker, receiver: WebhookReceiver, history: History
) -> None:
    history.add_webhook(receiver.url, fmt="slack", events=["run.failed"], created_by="root")
    notifications = Notifications(hub.connector, history, destinations=LOOPBACK)
    await notifications.start()
    try:
        with pytest.raises(TaskFailedError):
            await Engine(InMemoryConnector(broker, source_id="engine-a")).run(load(3))
        assert await asyncio.to_thread(receiver.wait_for, 1)
        assert "blocks" in receiver.posts[0][1]
    finally:
        await notifications.stop()


async def test_a_webhook_posts_through_the_environments_proxy(
    hub: DashboardHub, broker: InMemoryBroker, receiver: WebhookReceiver, history: History,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``HTTP_PROXY`` as the dashboard was started with: the post goes through it (a real
    one, proxy.py), the receiver still an allowed destination."""
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        history.add_webhook(receiver.url, fmt="generic", events=["run.failed"], created_by="r")
        notifications = Notifications(hub.connector, history, destinations=LOOPBACK)
        await notifications.start()
        try:
            with pytest.raises(TaskFailedError):
                await Engine(InMemoryConnector(broker, source_id="engine-a")).run(load(3))
            assert await asyncio.to_thread(receiver.wait_for, 1)
        finally:
            await notifications.stop()
        (served,) = await asyncio.to_thread(proxy.wait_for_requests, 1)
    assert served.startswith(f"POST {receiver.url.split('//')[1].split('/')[0]}/"), served


@pytest.mark.parametrize("who", [VERA, OLGA])
async def test_viewers_and_operators_may_not_see_nor_change_webhooks(
    http: httpx.AsyncClient, history: History, who: dict[str, str]
) -> None:
    history.add_webhook("https://hooks.example/secret", fmt="generic", events=["run.failed"],
                        created_by="root")  # fmt: skip
    answers = [
        await http.post("/api/settings/webhooks", headers=who, json={"url": "https://x/y"}),
        await http.get("/api/settings/webhooks", headers=who),
        await http.delete("/api/settings/webhooks/1", headers=who),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert all("secret" not in a.text for a in answers)
    assert len(history.webhooks()) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://hooks.example/s3cr3t"}, "http(s) URL, not ftp://hooks.example/…"),
        ({"url": "https://h/s3cr3t", "format": "teams"}, "format must be one of"),
        ({"url": "https://h/s3cr3t", "events": ["run.maybe"]}, "events must be a list"),
        ({"url": "https://h/s3cr3t", "filters": ["a//b"]}, "is not ORG"),
        ({"url": "https://h/s3cr3t", "token": "x"}, "unknown field 'token'"),
    ],
)
async def test_a_bad_webhook_is_refused_without_showing_its_url(
    http: httpx.AsyncClient, history: History, body: dict[str, object], message: str
) -> None:
    answer = await http.post("/api/settings/webhooks", headers=ROOT, json=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert "s3cr3t" not in answer.text
    assert history.webhooks() == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/s3cr3t", "127.0.0.1 is refused: a loopback address"),
        ("http://[::1]/s3cr3t", "[::1] is refused: a loopback address"),
        ("http://169.254.169.254/s3cr3t", "a cloud metadata address"),
        ("http://2130706433/s3cr3t", "2130706433 (at 10.1.2.3) is refused"),
        ("http://localhost/s3cr3t", "localhost is refused: a loopback name"),
        ("http://metadata.google.internal/s3cr3t", "a cloud metadata service"),
        ("https://hooks.example.net/s3cr3t", "(at 10.1.2.3) is refused: a private address"),
    ],
)
async def test_a_webhook_inside_is_refused_saying_why(
    hub: DashboardHub, history: History, url: str, why: str
) -> None:
    """Names resolve through a stub (``hooks.example.net`` to a private address): nothing is
    asked of the DNS nor connected to."""
    inside = Destinations(resolve=lambda host, port: ["10.1.2.3"])
    notifications = Notifications(hub.connector, history, destinations=inside)
    settings = DashboardSettings(roles=ROLES, sign_in=signed_in_by_header(), history=history)
    app = create_app(hub, settings, api_tokens=history, notifications=notifications)
    async with _client(app) as http:
        answer = await http.post("/api/settings/webhooks", headers=ROOT, json={"url": url})
    await notifications.stop()
    assert answer.status_code == 400, answer.text
    assert why in answer.json()["error"]
    assert "--notify-allow-destination" in answer.json()["error"]
    assert "s3cr3t" not in answer.text
    assert history.webhooks() == []
    assert notifications.running == {}


async def test_a_kept_webhook_now_refused_is_not_run(
    hub: DashboardHub, history: History, receiver: WebhookReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """One kept before its destination was refused: logged and not run; the others run."""
    history.add_webhook(receiver.url, fmt="generic", events=["run.failed"], created_by="root")
    history.add_webhook("https://hooks.example/x", fmt="generic", events=["run.failed"],
                        created_by="root")  # fmt: skip
    notifications = Notifications(hub.connector, history)
    await notifications.start()
    await notifications.stop()
    assert "webhook 1 (http://127.0.0.1:" in caplog.text
    assert "not run" in caplog.text
    assert WebhookReceiver.SECRET not in caplog.text


async def test_without_a_history_the_settings_say_notifications_need_one(
    hub: DashboardHub,
) -> None:
    settings = DashboardSettings(roles=ROLES, sign_in=signed_in_by_header())
    async with _client(create_app(hub, settings)) as http:
        listed = (await http.get("/api/settings/webhooks", headers=ROOT)).json()
        added = await http.post("/api/settings/webhooks", headers=ROOT,
                                json={"url": "https://h/x"})  # fmt: skip
    assert listed["available"] is False
    assert "--db URL" in listed["why"]
    assert added.status_code == 503
