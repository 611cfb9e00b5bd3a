"""The context-manager side every server the tests start shares (brokers, PostgreSQL,
Prometheus): started on entry, closed on exit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from typing_extensions import Self

__all__ = ["ChildProcess", "ManagedProcess", "executable", "in_parallel"]


class ManagedProcess:
    """``with Server() as server``: :meth:`start` on entry and :meth:`close` on exit.

    A start that fails closes what it had made before the error goes on.
    """

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ChildProcess(ManagedProcess):
    """A server the tests run as a child process: alive, hung (SIGSTOP), resumed, stopped or
    killed on demand. Subclasses set :attr:`log_path` and start ``self._process``."""

    log_path: Path
    _process: subprocess.Popen[bytes] | None = None
    _paused = False
    stop_timeout = 5.0  # seconds from SIGTERM to SIGKILL

    @property
    def running(self) -> bool:
        """Whether the process is alive (paused counts as alive)."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the running server."""
        return self._process.pid if self._process is not None else None

    def log_text(self) -> str:
        """Everything the server has logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it lingers); idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._paused:
            process.send_signal(signal.SIGCONT)
            self._paused = False
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        self._paused = False

    def restart(self) -> None:
        """Stop and start again."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Hang the server with SIGSTOP: connections stay open but nothing is answered."""
        if self._process is None or self._paused:
            return
        self._process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Undo :meth:`pause` with SIGCONT."""
        if self._process is None or not self._paused:
            return
        self._process.send_signal(signal.SIGCONT)
        self._paused = False


def in_parallel(calls: Sequence[Callable[[], object]]) -> None:
    """Run ``calls`` at once, each in a thread of its own (servers that boot or wait side by
    side); the first exception any raised is raised here, once all have ended."""
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def executable(name: str, *candidates: str) -> str | None:
    """Where the program ``name`` is: on ``PATH``, else the first of ``candidates`` that can be
    run (Debian puts servers in ``/usr/sbin``, often not on a user's ``PATH``); ``None``."""
    found = shutil.which(name)
    if found is not None:
        return found
    return next((path for path in candidates if os.access(path, os.X_OK)), None)
