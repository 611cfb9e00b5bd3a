"""Tasks the executor tests run in worker processes: in a module a worker can import by name
(the tests put this folder on ``sys.path``, which spawned workers start with)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from cascade.runtime import TaskContext, current_task, inject, resource, task

log = logging.getLogger("crunch")


@task
def crunch(x: int) -> list[int]:
    """Some CPU work: the pid of the process that did it, and its answer."""
    return [os.getpid(), sum(i * i for i in range(50_000 + x))]


@task
def whoami() -> TaskContext | None:
    """What ``current_task()`` says in the worker."""
    return current_task()


@task
def noisy(n: int) -> int:
    """Logs two lines (one below INFO) and prints one."""
    log.info("line %d in pid %d", n, os.getpid())
    log.debug("a detail")
    print(f"printed {n}")
    return n


@task
def dies_once(marker: str) -> int:
    """Kills its worker the first time (``marker`` does not exist yet); then its pid."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


@task
def raises(text: str) -> None:
    """Raises ``ValueError(text)``."""
    raise ValueError(text)


class Unsendable(Exception):
    """An exception that holds a lock: it cannot be pickled."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.lock = threading.Lock()


@task
def raises_unsendable(text: str) -> None:
    """Raises :class:`Unsendable`."""
    raise Unsendable(text)


@task
def returns_a_lock() -> object:
    """Returns what cannot be pickled."""
    return threading.Lock()


@task
def waits(folder: str, n: int) -> int:
    """Says it started (``folder/started-n``), then waits for ``folder/release`` (at most a
    minute)."""
    root = Path(folder)
    (root / f"started-{n}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not (root / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return n


@task
def scaled(x: int, settings: Any = inject("settings")) -> int:
    """``x`` times the ``factor`` of the resource ``settings``."""
    return int(x * settings["factor"])


@task
def worker_name(n: int) -> str:
    """The name of the Dask worker that runs it (``n`` tells the calls apart)."""
    import distributed

    return str(distributed.get_worker().name)


@task(name="crunch")
def crunch_saying_so(x: int, folder: str) -> list[int]:
    """:func:`crunch` with some more CPU, saying it started (``folder/started-<x>.<attempt>``
    holds its pid), first waiting while ``folder/hold-<x>`` exists, and logging its end."""
    context = current_task()
    attempt = context.attempt if context is not None else 0
    root = Path(folder)
    (root / f"started-{x}.{attempt}").write_text(str(os.getpid()))
    while (root / f"hold-{x}").exists():
        time.sleep(0.01)
    answer = sum(i * i for i in range(1_000_000 + x))
    log.warning("item %d done in pid %d", x, os.getpid())
    return [os.getpid(), answer]


@task
def big(megabytes: float, folder: str) -> bytes:
    """``megabytes`` MB of bytes, each run of it a line of ``folder/big-runs`` (its pid)."""
    with (Path(folder) / "big-runs").open("a") as runs:
        runs.write(f"{os.getpid()}\n")
    return bytes(range(256)) * int(megabytes * 1_000_000 / 256)


@task
def size_of(data: bytes, after: Any = None) -> int:
    """How many bytes ``data`` is (``after``: what it waits for besides)."""
    return len(data)


# --- per-call executors and per-worker resources (test_executor_per_call.py) ---

TEARDOWNS = "CASCADE_TEST_TEARDOWNS"  # a folder each worker's teardown writes its pid into
made_here = 0  # how often this process made `worker_lock`


@resource(per_worker=True)
def worker_lock() -> Any:
    """A value no pickle crosses (a lock), made in the process that runs the task; its
    teardown leaves a file named by that process's pid."""
    global made_here
    made_here += 1
    yield {"pid": os.getpid(), "lock": threading.Lock()}
    folder = os.environ.get(TEARDOWNS)
    if folder:
        Path(folder, str(os.getpid())).write_text("torn down")


@resource(per_worker=True)
def warehouse() -> Any:
    """An SQLAlchemy engine on the SQLite file ``CASCADE_TEST_WAREHOUSE`` names."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{os.environ['CASCADE_TEST_WAREHOUSE']}")
    yield engine
    engine.dispose()


@task
def locked(box: Any = inject("worker_lock")) -> dict[str, Any]:
    """Where it ran, where its resource was made, and how often this process made one."""
    with box["lock"]:
        return {"pid": os.getpid(), "made_in": box["pid"], "made": made_here}


@task
def held_by(lock: Any = inject("engine_lock")) -> int:
    """The pid of the process it ran in, holding a lock the engine's process made."""
    with lock:
        return os.getpid()


@resource(per_worker=True)
def broken_vault() -> Any:
    """A per-worker resource whose setup raises."""
    _refuse()
    yield  # a generator function: its setup never gets here


def _refuse() -> None:
    raise ConnectionRefusedError("vault is down")


@task
def opens_vault(vault: Any = inject("broken_vault")) -> Any:
    return vault
