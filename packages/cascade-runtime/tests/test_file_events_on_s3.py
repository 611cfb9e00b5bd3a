"""A file trigger's poller on a bucket of a real S3 server (moto's, over HTTP on loopback):
new and rewritten objects given once each by their ETag, deleted ones forgotten, a storm
bounded per poll, a missing bucket said until it is there, and keys that climb out of the
pattern's root refused."""

from __future__ import annotations

from typing import Any

import fsspec
import pytest

from cascade.runtime import FileWatch, FileWatchError
from cascade.testkit import S3Server
from cascade.testkit import s3_server as s3_server  # fixture: moto's S3 server on loopback

pytest.importorskip("s3fs", reason="a watch on S3 needs cascade-runtime[s3]")


def _s3(server: S3Server) -> Any:
    """Another client of the server, as a partner dropping files is."""
    return fsspec.filesystem("s3", skip_instance_cache=True, **server.storage_options)


async def test_new_and_rewritten_objects_are_given_once_each(s3_server: S3Server) -> None:
    """Objects there at the first poll are not given; one put after is, by its ``s3://`` path,
    ETag, size and time; put again with new content it is given again; a listing unchanged
    gives none; a deleted object is forgotten."""
    bucket = s3_server.new_bucket()
    s3 = _s3(s3_server)
    s3.pipe(f"{bucket}/in/old.csv", b"old")
    watch = FileWatch(f"{bucket}/in/*.csv", storage_options=s3_server.storage_options)
    assert await watch.poll() == []
    s3.pipe(f"{bucket}/in/new.csv", b"hello")
    s3.pipe(f"{bucket}/in/sub/deeper.csv", b"not matched by *")
    (event,) = await watch.poll()
    etag = s3.info(f"{bucket}/in/new.csv")["ETag"].strip('"')
    assert (event.path, event.version, event.size) == (f"{bucket}/in/new.csv", etag, 5)
    assert event.modified is not None
    assert event.modified.endswith("+00:00")
    assert await watch.poll() == []
    s3.pipe(f"{bucket}/in/new.csv", b"hello again")
    (rewritten,) = await watch.poll()
    assert (rewritten.path, rewritten.size) == (event.path, 11)
    assert rewritten.version != event.version
    s3.rm(f"{bucket}/in/old.csv")
    assert await watch.poll() == []
    assert (watch.stats.listed, watch.stats.new) == (1, 2)


async def test_a_storm_in_a_bucket_is_given_a_few_at_a_time(s3_server: S3Server) -> None:
    """With ``catchup`` and ``max_per_poll=2``, five objects are given 2, 2, 1, in a stable
    order (by time, then path), each once, through ``**``."""
    bucket = s3_server.new_bucket()
    s3 = _s3(s3_server)
    for i in range(5):
        s3.pipe(f"{bucket}/in/d{i % 2}/f{i}.csv", b"x")
    watch = FileWatch(
        f"{bucket}/in/**/*.csv",
        catchup=True,
        max_per_poll=2,
        storage_options=s3_server.storage_options,
    )
    polls = [await watch.poll() for _ in range(4)]
    assert [len(p) for p in polls] == [2, 2, 1, 0]
    given = [e for p in polls for e in p]
    assert sorted(e.path for e in given) == sorted(
        f"{bucket}/in/d{i % 2}/f{i}.csv" for i in range(5)
    )
    assert [(e.modified, e.path) for e in given] == sorted((e.modified, e.path) for e in given)


async def test_a_missing_bucket_fails_each_poll_until_it_is_there(s3_server: S3Server) -> None:
    """A listing of a bucket that does not exist (S3's listing says nothing of it) raises
    FileWatchError naming the pattern and the bucket; once the bucket is made, polls work."""
    bucket = f"{s3_server.new_bucket()}-not-yet"
    pattern = f"{bucket}/in/*.csv"
    watch = FileWatch(pattern, storage_options=s3_server.storage_options)
    for _ in range(2):
        with pytest.raises(FileWatchError, match=f"bucket {bucket} does not exist") as raised:
            await watch.poll()
        assert raised.value.pattern == pattern
    s3 = _s3(s3_server)
    s3.mkdir(bucket)
    assert await watch.poll() == []
    s3.pipe(f"{bucket}/in/a.csv", b"a")
    assert [e.path for e in await watch.poll()] == [f"{bucket}/in/a.csv"]
    assert (watch.stats.polls, watch.stats.failed) == (4, 2)


async def test_an_empty_prefix_in_a_bucket_is_no_failure(s3_server: S3Server) -> None:
    """A prefix with no object yet (S3 has no directories) lists as empty, not as failed."""
    watch = FileWatch(
        f"{s3_server.new_bucket()}/in/*.csv", storage_options=s3_server.storage_options
    )
    assert await watch.poll() == []
    assert watch.stats.failed == 0


async def test_a_key_that_climbs_out_of_the_root_is_refused(s3_server: S3Server) -> None:
    """S3 keeps a key ``in/../x.csv`` as it is: it is refused and counted, never given as a
    path."""
    bucket = s3_server.new_bucket()
    s3 = _s3(s3_server)
    s3.pipe(f"{bucket}/in/../x.csv", b"x")
    s3.pipe(f"{bucket}/in/ok.csv", b"ok")
    watch = FileWatch(
        f"{bucket}/in/**/*.csv", catchup=True, storage_options=s3_server.storage_options
    )
    assert [e.path for e in await watch.poll()] == [f"{bucket}/in/ok.csv"]
    assert watch.stats.refused == 1


def test_a_pattern_whose_root_is_no_bucket_is_refused() -> None:
    """An object store's pattern with a wildcard in its bucket is refused when made."""
    with pytest.raises(ValueError, match="names a bucket or directory"):
        FileWatch("s3://*/in/*.csv")
