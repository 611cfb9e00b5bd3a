"""A private Prometheus for the tests: Debian's ``prometheus`` in a temp dir, on a free port.

Never the system's service: a process of the test's own, with its configuration,
its rule files and its TSDB in a temp dir, listening on 127.0.0.1 only, stopped
by its pid (SIGTERM, then SIGKILL if it lingers) and its directory removed.
:meth:`PrivatePrometheus.query` asks its HTTP API (``/api/v1/query``);
:meth:`PrivatePrometheus.wait_for` polls a query until a condition holds or a
deadline passes (scrapes happen on Prometheus's clock: there is nothing to
await but the answer).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._managed import ManagedProcess
from ._ports import free_port

__all__ = ["NO_PROMETHEUS", "PrivatePrometheus", "prometheus_path"]

NO_PROMETHEUS = "prometheus is not installed (Debian: apt-get install prometheus)"

Vector = list[dict[str, Any]]


def prometheus_path() -> str | None:
    """The ``prometheus`` executable on ``PATH``, if there is one."""
    return shutil.which("prometheus")


class PrivatePrometheus(ManagedProcess):
    """One Prometheus server of the test's own, configured by ``config`` (YAML text).

    ``files`` (name → text) are written beside the configuration (rule files it
    names). Also a context manager. ``url`` is its base URL once started.
    """

    host = "127.0.0.1"

    def __init__(
        self, config: str, files: dict[str, str] | None = None, *, startup_timeout: float = 60.0
    ) -> None:
        executable = prometheus_path()
        if executable is None:
            raise RuntimeError(NO_PROMETHEUS)
        self.executable = executable
        self.config = config
        self.files = dict(files or {})
        self.startup_timeout = startup_timeout
        self.port = 0
        self.root = Path()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    @property
    def log(self) -> str:
        """What the server logged so far (for a failing test's message)."""
        path = self.root / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        """Write the files, start the server, and wait until it says it is ready."""
        self.root = Path(tempfile.mkdtemp(prefix="cascade-prometheus-"))
        (self.root / "prometheus.yml").write_text(self.config, encoding="utf-8")
        for name, text in self.files.items():
            (self.root / name).write_text(text, encoding="utf-8")
        self.port = free_port()
        with open(self.root / "prometheus.log", "ab") as log:
            self._process = subprocess.Popen(
                [
                    self.executable,
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address={self.host}:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log_text = self.log
                self.close()
                raise RuntimeError(f"prometheus did not start:\n{log_text}")
            time.sleep(0.1)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def query(self, expr: str) -> Vector:
        """The instant vector of ``expr`` now: ``[{"metric": {...}, "value": [ts, "v"]}]``."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus refused {expr!r}: {body}")
        result: Vector = body["data"]["result"]
        return result

    def wait_for(
        self, expr: str, condition: Callable[[Vector], bool], timeout: float = 60.0
    ) -> Vector:
        """Query ``expr`` until ``condition(result)`` holds; the result. ``TimeoutError``
        (with the last result and the server's log) once ``timeout`` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if condition(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{expr!r} did not meet the condition within {timeout:g} s; last: "
                    f"{result}\n{self.log}"
                )
            time.sleep(0.2)

    def close(self) -> None:
        """Stop the server by its pid (SIGTERM, then SIGKILL) and remove its directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)
