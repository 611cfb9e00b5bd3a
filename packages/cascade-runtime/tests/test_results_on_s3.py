"""A results store in a bucket of a real S3 server (moto's, over HTTP on loopback) shared by
servers: what one engine writes there, another server's store sees, however long that store
has been open."""

from __future__ import annotations

import asyncio

import pytest

from cascade.runtime import Engine, ResultStore, RunStarted, task
from cascade.runtime.testing import EventRecorder, eventually
from cascade.testkit import S3Server
from cascade.testkit import s3_server as s3_server  # fixture: moto's S3 server on loopback

pytest.importorskip("s3fs", reason="a store on S3 needs cascade-runtime[s3]")


async def test_a_run_read_while_it_lives_is_read_again_as_it_grows_and_ends(
    s3_server: S3Server,
) -> None:
    """Another server's store reads a live run (as a carry-on reads a lost run's journal),
    then reads it again: it sees the tasks kept since, then the manifest written at its end,
    not the listings it read first (s3fs kept them for the process's life)."""
    url = f"{s3_server.new_bucket()}/results"
    options = s3_server.storage_options
    release = asyncio.Event()

    @task(name="first")
    async def first() -> int:
        return 1

    @task(name="second")
    async def second(value: int) -> int:
        return value + 1

    @task(name="waits")
    async def waits(value: int) -> int:
        await release.wait()
        return value

    engine = Engine(results=ResultStore(url, storage_options=options))
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    other = ResultStore(url, storage_options={**options, "skip_instance_cache": True})
    running = asyncio.ensure_future(engine.run(waits(second(first()))))
    try:
        await recorder.until(lambda: bool(recorder.names(RunStarted)))
        (run_id,) = {e.run_id for e in recorder.events if isinstance(e, RunStarted)}
        await eventually(lambda: other.began(run_id))
        assert other.resolve(run_id[:8]) == run_id  # the runs listed
        await eventually(lambda: len(other.manifest(run_id).tasks) == 2)
        assert other.manifest(run_id).status == "Unfinished"
        release.set()
        await running
    finally:
        release.set()
        await asyncio.gather(running, return_exceptions=True)
    ended = other.manifest(run_id)
    assert (ended.status, len(ended.tasks)) == ("Succeeded", 3)
