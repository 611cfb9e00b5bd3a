"""A webhook receiver of the tests' own (cascade-notify's and the dashboard's): a real HTTP
server on a free loopback port, in a thread, that keeps every JSON body posted to it and
answers as told (a status per request, or never, or with a huge body); and an HTTP proxy
(proxy.py, in a process of its own) for posts that go through one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ._managed import ManagedProcess

__all__ = ["ForwardProxy", "WebhookReceiver"]


class WebhookReceiver:
    """``url``: where to post (with a secret path, as a Slack webhook's). ``statuses``: the
    answers to give, one per request, then 200; ``hang``: never answer (until stopped);
    ``hang_first``: never answer that many first requests. ``paths``: each request's path
    and query, in order."""

    SECRET = "/services/T000/B000/s3cr3t-token"

    def __init__(self) -> None:
        self.posts: list[tuple[float, Any]] = []
        self.requests = 0
        self.statuses: list[int] = []
        self.hang = False
        self.hang_first = 0
        self.paths: list[str] = []
        self.answer_size = 0
        self.answered = 0
        self._answers_ended = 0
        self._released = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                data = self.rfile.read(size)
                with receiver._changed:
                    receiver.requests += 1
                    receiver.paths.append(self.path)
                    held = receiver.hang or receiver.requests <= receiver.hang_first
                    receiver._changed.notify_all()
                if held:
                    receiver._released.wait(30)
                    return
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200:
                    with receiver._changed:
                        receiver.posts.append((time.time(), json.loads(data)))
                        receiver._changed.notify_all()
                if receiver.answer_size:
                    self._answer_hugely(receiver.answer_size)
                    return
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def _answer_hugely(self, size: int) -> None:
                self.send_response(200)
                self.send_header("content-length", str(size))
                self.end_headers()
                chunk = b"x" * 65536
                try:
                    for start in range(0, size, len(chunk)):
                        self.wfile.write(chunk[: size - start])
                        with receiver._changed:
                            receiver.answered += len(chunk)
                except OSError:
                    pass
                finally:
                    self.close_connection = True
                    with receiver._changed:
                        receiver._answers_ended += 1
                        receiver._changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}{self.SECRET}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, posts: int = 0, requests: int = 0, timeout: float = 10.0) -> bool:
        """Wait until at least ``posts`` were taken and ``requests`` came in."""
        with self._changed:
            return self._changed.wait_for(
                lambda: len(self.posts) >= posts and self.requests >= requests, timeout
            )

    def wait_answered(self, answers: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``answers`` huge answers ended (sent whole, or their posters hung up)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._answers_ended >= answers, timeout)


class ForwardProxy(ManagedProcess):
    """A real HTTP proxy of the tests' own: proxy.py (forwarding plain HTTP, tunnelling with
    CONNECT) in a process of its own on a free loopback port, as an operator's proxy would be.
    ``url``: what ``HTTP_PROXY`` is set to; :meth:`requests`: what it served, as its access log
    says (``"POST 127.0.0.1:PORT/path - 200 OK"``, ``"CONNECT host:443 - ..."``); proxy.py
    writes a line when the client's connection to it closes."""

    startup_timeout = 30.0

    def __init__(self) -> None:
        self.root = Path()
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start proxy.py on port 0 and wait until it says which port it took."""
        self.root = Path(tempfile.mkdtemp(prefix="cascade-proxy-"))
        port_file = self.root / "port"
        options = {
            "--hostname": "127.0.0.1",
            "--port": "0",
            "--port-file": str(port_file),
            "--log-file": str(self.root / "proxy.log"),
            "--num-workers": "1",
            "--num-acceptors": "1",
        }
        with open(self.root / "proxy.out", "ab") as out:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "proxy",
                    *(word for pair in options.items() for word in pair),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        deadline = time.monotonic() + self.startup_timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"proxy.py did not start:\n{self.log}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])

    def close(self) -> None:
        """Stop the proxy and remove its files."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.root != Path():
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def log(self) -> str:
        """What proxy.py logged so far (for a failing test's message)."""
        texts = (p.read_text(errors="replace") for p in self.root.glob("proxy.*") if p.is_file())
        return "\n".join(texts)

    def requests(self) -> list[str]:
        """The requests served so far, in order, as the access log tells them."""
        path = self.root / "proxy.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return [
            line.split(" - ", 3)[-1] for line in lines if "access_log" in line and " - " in line
        ]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[str]:
        """:meth:`requests` once there are ``count`` (``TimeoutError`` after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while len(served := self.requests()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the proxy served {served}, not {count}:\n{self.log}")
            time.sleep(0.05)
        return served
