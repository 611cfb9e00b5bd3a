"""At serve start, a results store that cannot create a file exclusively (the claims of
carry-ons, schedule slots and reruns rest on it) is said in a warning and counted; one that
fails or hangs is said too; serving goes on, and the probe leaves no file behind."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import Engine, ResultStore, task
from cascade.runtime.testing import eventually, serving
from cascade.testkit import S3Server
from cascade.testkit import s3_server as s3_server  # fixture: moto's S3 server on loopback


class _Lax(MemoryFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """A file system whose exclusive create is not: ``xb`` writes over a file there."""

    protocol = ("lax",)
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return str(super()._strip_protocol(path.replace(f"{cls.protocol[0]}://", "memory://")))

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        return super()._open(path, mode.replace("x", "w"), *args, **kwargs)


class _Refusing(_Lax):
    """A file system that refuses the probe's file (``probe-{hex}.json``)."""

    protocol = ("refusing",)

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if "/probe-" in path:
            raise PermissionError("Access Denied")
        return super()._open(path, mode, *args, **kwargs)


class _Hanging(_Lax):
    """A file system whose creates of the probe's file hang until ``released``."""

    protocol = ("hanging",)
    released = threading.Event()

    def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        if "/probe-" in path:
            self.released.wait(30)
        return super()._open(path, mode, *args, **kwargs)


for _fs in (_Lax, _Refusing, _Hanging):
    fsspec.register_implementation(_fs.protocol[0], _fs, clobber=True)


@task(name="one")
def one() -> int:
    return 1


def _engine(store: ResultStore) -> Engine:
    """An engine on a broker of its own, its results in ``store``."""
    return Engine(
        InMemoryConnector(InMemoryBroker(), source_id="server-1"),
        heartbeat_interval=None,
        results=store,
    )


def _store(protocol: str) -> ResultStore:
    return ResultStore(f"{protocol}://t-{uuid.uuid4().hex[:8]}/results")


async def test_a_store_whose_create_is_not_exclusive_is_said_and_counted_and_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A warning names the store and what is then not exact; ``results_store_not_exclusive``
    counts it; the probe's file is gone; the server serves."""
    store = _store("lax")
    with caplog.at_level(logging.WARNING, "cascade.runtime.serve"):
        engine = _engine(store)
        async with serving(engine, {"one": one}):
            await eventually(lambda: engine.stats.results_store_not_exclusive == 1)
            assert store.fs.find(store.root) == []
    (said,) = [r.getMessage() for r in caplog.records if "exclusively" in r.getMessage()]
    assert said.startswith(f"results store {store.url} does not create files exclusively")
    assert "a carried-on run may run twice, a schedule's slot or a rerun may start twice" in said
    assert engine.stats.results_store_unprobed == 0


async def test_a_store_that_refuses_the_probe_is_said_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A store that fails the probe is said (with its error), not a crash."""
    store = _store("refusing")
    with caplog.at_level(logging.WARNING, "cascade.runtime.serve"):
        engine = _engine(store)
        async with serving(engine, {"one": one}):
            await eventually(lambda: engine.stats.results_store_unprobed == 1)
    (said,) = [r.getMessage() for r in caplog.records if "exclusively" in r.getMessage()]
    assert said.startswith(f"cannot tell whether results store {store.url} creates files")
    assert "PermissionError: Access Denied" in said
    assert engine.stats.results_store_not_exclusive == 0


async def test_a_store_that_hangs_is_said_after_the_probes_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The probe waits for the store its ``probe_timeout`` at most; serving never waits."""
    store = _store("hanging")
    store.probe_timeout = 0.2
    try:
        with caplog.at_level(logging.WARNING, "cascade.runtime.serve"):
            engine = _engine(store)
            async with serving(engine, {"one": one}):
                await eventually(lambda: engine.stats.results_store_unprobed == 1)
    finally:
        _Hanging.released.set()
    assert "no answer within 0.2 s" in caplog.text


def test_a_directory_and_s3_create_exclusively_and_leave_no_probe(
    tmp_path: Any, s3_server: S3Server
) -> None:
    """A local directory's create (a link) and S3's (a conditional put, moto's server) are
    exclusive; a store that writes over a file is not; no probe's file is left."""
    directory = ResultStore(tmp_path / "results")
    s3 = ResultStore(f"{s3_server.new_bucket()}/results", storage_options=s3_server.storage_options)
    lax = _store("lax")
    assert directory.creates_exclusively()
    assert s3.creates_exclusively()
    assert not lax.creates_exclusively()
    assert list((tmp_path / "results").iterdir()) == []
    assert s3.fs.find(s3.root) == []
    assert lax.fs.find(lax.root) == []
