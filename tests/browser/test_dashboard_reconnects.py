"""The page keeps its live view: others holding every stream, a refusal, a server restart."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from cascade.testkit import BrokerEndpoint

from .conftest import TOKEN, Dashboard, EngineThread

pytestmark = pytest.mark.integration

WAIT = 30
#: What the dashboard allows without the token: streams in all, and from one address.
TOTAL, PER_ADDRESS = 100, 8


def wait(driver: Any, condition: Any, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def badge(driver: Any) -> str:
    text: str = driver.find_element(By.ID, "connection").text
    return text


class Streams:
    """Anonymous ``curl -N /api/stream`` connections, held open on the engine thread's loop."""

    def __init__(self, runner: EngineThread, url: str) -> None:
        self.runner = runner
        self.url = url
        self.stack = contextlib.AsyncExitStack()

    def hold(self, count: int) -> None:
        """Open ``count`` streams, PER_ADDRESS from each of 127.0.0.2, .3, ... (not the page's)."""

        async def open_all() -> None:
            for n in range(count):
                transport = httpx.AsyncHTTPTransport(
                    local_address=f"127.0.0.{2 + n // PER_ADDRESS}"
                )
                http = await self.stack.enter_async_context(
                    httpx.AsyncClient(base_url=self.url, transport=transport, timeout=10)
                )
                response = await self.stack.enter_async_context(http.stream("GET", "api/stream"))
                assert response.status_code == 200, n

        self.runner.submit(open_all()).result(60)

    def release(self) -> None:
        self.runner.submit(self.stack.aclose()).result(60)


@pytest.fixture
def streams(engine_thread: EngineThread, dashboard: Dashboard) -> Generator[Streams, None, None]:
    held = Streams(engine_thread, dashboard.url)
    yield held
    held.release()


def test_a_refused_page_retries_by_itself_until_it_gets_in(
    browser: Any, dashboard: Dashboard, streams: Streams
) -> None:
    """Every anonymous stream taken: the page says so and retries, then streams, never reloaded."""
    streams.hold(TOTAL)
    browser.get(dashboard.url)
    wait(browser, lambda d: "retrying" in badge(d))
    browser.execute_script("window.notReloaded = true;")
    wait(browser, lambda d: d.execute_script("return window.cascadeReconnects || 0") >= 1)
    assert "retrying" in badge(browser)
    streams.release()
    wait(browser, lambda d: badge(d) == "broker connected")
    assert browser.execute_script("return window.notReloaded") is True


def test_the_token_holders_page_gets_in_while_others_hold_every_stream(
    browser: Any, dashboard: Dashboard, streams: Streams
) -> None:
    """100 anonymous streams open: the page with the token still gets its live view at once."""
    streams.hold(TOTAL)
    browser.get(f"{dashboard.url}#token={TOKEN}")
    wait(browser, lambda d: badge(d) == "broker connected")
    assert browser.execute_script("return window.cascadeReconnects") == 0
    assert browser.find_element(By.ID, "mode").text == "controls enabled"


def test_the_page_comes_back_after_a_server_restart(
    browser: Any, mqtt_broker: BrokerEndpoint
) -> None:
    """The dashboard stopped and started again on its port: the open page streams again."""
    broker = ("--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--token", TOKEN)
    first = Dashboard(*broker)
    try:
        browser.get(first.url)
        wait(browser, lambda d: badge(d) == "broker connected")
        browser.execute_script("window.notReloaded = true;")
    finally:
        assert first.stop() == 0, "".join(first.output)
    wait(browser, lambda d: "retrying" in badge(d))
    port = first.url.rstrip("/").rsplit(":", 1)[1]
    second = Dashboard(*broker, "--listen", f"127.0.0.1:{port}")
    try:
        assert second.url == first.url
        wait(browser, lambda d: badge(d) == "broker connected")
        assert browser.execute_script("return window.notReloaded") is True
    finally:
        assert second.stop() == 0, "".join(second.output)
