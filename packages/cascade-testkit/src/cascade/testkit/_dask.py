"""A Dask cluster of the tests' own: ``dask scheduler`` and ``dask worker`` processes on
loopback, as a user's deployment runs them."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ._ports import free_port

__all__ = ["DaskCluster"]


class DaskCluster:
    """A ``dask scheduler`` that reruns nothing on its own (``allowed-failures`` 0) and one
    ``dask worker`` process of one thread for each of ``workers`` (named ``w0``, ``w1``...),
    each offering the resources given for it (``{"gpu": 1}``: ``--resources "gpu=1"``), on
    loopback, started (ready when made) and stopped. ``paths`` go on their ``PYTHONPATH``: the
    workflow's code, importable where it runs. Each worker has its nanny, which starts it again
    when it dies; ``nanny=False`` starts them without (``--no-nanny``), one process fewer each
    to start. Needs ``distributed`` installed."""

    def __init__(
        self,
        workers: Sequence[Mapping[str, float]] | int = 2,
        paths: Sequence[str] = (),
        *,
        nanny: bool = True,
    ) -> None:
        offers = [{}] * workers if isinstance(workers, int) else list(workers)
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        env = dict(os.environ)
        env["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = "0"
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
        dask = [sys.executable, "-m", "dask"]
        options = ["--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"]
        if not nanny:
            options.append("--no-nanny")

        def start(args: list[str]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                args,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its group: a nanny and the worker it started
            )

        self.scheduler = start(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        try:
            for n, offer in enumerate(offers):
                resources = " ".join(f"{name}={amount:g}" for name, amount in offer.items())
                args = ["--resources", resources] if resources else []
                self.workers.append(
                    start([*dask, "worker", self.address, *options, "--name", f"w{n}", *args])
                )
            with self.client() as client:
                client.wait_for_workers(len(offers), timeout=60)
        except BaseException:
            self.stop()
            raise

    def client(self) -> Any:
        """A synchronous ``distributed.Client`` of the cluster (close it: ``with``)."""
        distributed: Any = importlib.import_module("distributed")
        return distributed.Client(self.address, timeout=60, set_as_default=False)

    def stop(self) -> None:
        """End the workers, then the scheduler: each with what it started killed where it has
        not ended 3 s after its SIGTERM."""
        # the workers end before the scheduler does: a worker whose scheduler went first spends
        # seconds trying to reach it as it closes; and a nanny restarting a killed worker ends
        # only once that worker is up (8-15 s on a loaded machine): both were waited out
        for group in (self.workers, [self.scheduler]):
            for process in group:
                process.terminate()
            deadline = time.monotonic() + 3
            for process in group:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)  # a nanny's worker, or all of it
                process.wait()
