"""A results store in a bucket of a real S3 server (moto's, over HTTP on loopback) shared by
servers: what one server's store writes, another's sees, however long it has been open; a
claim is taken once."""

from __future__ import annotations

import time

import pytest

from cascade.runtime import ResultStore, RunManifest
from cascade.runtime.results._results import Claim, KeptTask, ManifestTask
from cascade.testkit import S3Server

pytest.importorskip("s3fs", reason="a store on S3 needs cascade-runtime[s3]")


def _stores(s3: S3Server) -> tuple[ResultStore, ResultStore]:
    """Two servers' stores of one bucket (each its own file system, as in two processes)."""
    url = f"{s3.new_bucket()}/results"
    options = s3.storage_options
    return (
        ResultStore(url, storage_options={**options, "skip_instance_cache": True}),
        ResultStore(url, storage_options={**options, "skip_instance_cache": True}),
    )


def test_a_reruns_claim_is_taken_once_across_servers(s3_server: S3Server) -> None:
    """Each server's claim of one run's rerun, taken in turn: the first holds; the others get
    it back (their listing of the claims taken since is not stale)."""
    one, other = _stores(s3_server)
    now = time.time()
    first = one.claim_rerun("r" * 32, Claim(run_id="a" * 32, source="server-a", at=now))
    assert other.claim_rerun("r" * 32, Claim(run_id="b" * 32, source="server-b", at=now)) == first
    one.release(first)
    second = other.claim_rerun("r" * 32, Claim(run_id="c" * 32, source="server-b", at=now))
    assert second.run_id == "c" * 32
    assert one.claim_rerun("r" * 32, Claim(run_id="d" * 32, source="server-a", at=now)) == second


def test_a_run_read_while_it_lives_is_read_again_as_it_grows_and_ends(
    s3_server: S3Server,
) -> None:
    """A server reads a live run another server writes (as a carry-on reads a lost run's
    journal), then reads it again: it sees the tasks kept since, then the manifest written
    at its end, not the listing it first read."""
    one, other = _stores(s3_server)
    run_id = "e" * 32
    other.write_began(RunManifest(run_id=run_id, status="", tasks={}))
    other.write_kept(run_id, 1, [_kept(run_id, 1)])
    assert one.resolve(run_id[:8]) == run_id  # the runs listed
    assert list(one.manifest(run_id).tasks) == ["step#1"]
    other.write_kept(run_id, 2, [_kept(run_id, 2)])
    assert list(one.manifest(run_id).tasks) == ["step#1", "step#2"]
    ended = RunManifest(run_id=run_id, status="Succeeded", tasks={})
    other.write_manifest(ended)
    other.forget_journal(run_id)
    assert one.manifest(run_id).status == "Succeeded"


def _kept(run_id: str, n: int) -> KeptTask:
    row = ManifestTask(name="step", task_id=f"t{n}", state="COMPLETED", from_run=run_id)
    return KeptTask(key=f"step#{n}", task=row)
