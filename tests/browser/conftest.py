"""A real headless Chromium (the system's, driven by Selenium), a dashboard process, an engine."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cascade.testkit import BrokerEndpoint, mqtt_broker  # noqa: F401

pytestmark = pytest.mark.integration

TOKEN = "browser-test-token"
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
_T = TypeVar("_T")


class Dashboard:
    """A `cascade dashboard` process; ``url`` is where it serves.

    Its user's data directory (where `cascade record` writes its default history) is
    ``data_home`` as ``XDG_DATA_HOME``, which platformdirs follows on Linux: by default a folder
    of its own, empty, never the user's."""

    def __init__(self, *args: str, data_home: Path | None = None) -> None:
        self._own_home: tempfile.TemporaryDirectory[str] | None = None
        if data_home is None:
            self._own_home = tempfile.TemporaryDirectory()
            data_home = Path(self._own_home.name)
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        env["XDG_DATA_HOME"] = str(data_home)
        env.pop("CASCADE_HISTORY_DB", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cascade.cli", "dashboard", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.output: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            found = re.search(r"cascade dashboard on (http://\S+/)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise AssertionError("the dashboard did not start:\n" + "".join(self.output))

    def stop(self) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            rest, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
        self.output.append(rest or "")
        if self._own_home is not None:
            self._own_home.cleanup()
        return self.process.returncode


@pytest.fixture
def dashboard(mqtt_broker: BrokerEndpoint) -> Generator[Dashboard, None, None]:  # noqa: F811
    """A dashboard with controls enabled, on the test's broker."""
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port),
                      "--token", TOKEN)  # fmt: skip
    yield board
    code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


@pytest.fixture
def browser() -> Generator[Any, None, None]:
    """Headless Chromium through chromedriver, both from the system's packages."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("needs the system packages chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1100", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class EngineThread:
    """An event loop in a thread of its own, so engines run while Selenium blocks the test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> Future[_T]:
        """Run ``coroutine`` on the thread's loop."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, function: Callable[[], _T]) -> _T:
        """Run ``function`` on the thread's loop, and return what it returned."""

        async def call() -> _T:
            return function()

        return self.submit(call()).result(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def engine_thread() -> Generator[EngineThread, None, None]:
    runner = EngineThread()
    yield runner
    runner.close()
