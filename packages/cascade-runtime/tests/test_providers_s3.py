"""``cs.io.s3.*`` against a real S3 server of the test's own (moto's, over HTTP on a free
loopback port): written, read back, configured by the environment as the Cascade engine's
were, or by ``storage_options``; a missing object fails its task."""

from __future__ import annotations

from typing import Any

import pytest

import cascade.runtime as cs
from cascade.runtime import task
from cascade.testkit import S3Server
from cascade.testkit import s3_server as s3_server  # fixture: moto's S3 server on loopback

pytest.importorskip("s3fs", reason="cs.io.s3.* needs cascade-runtime[s3]")


@pytest.fixture
def options(s3_server: S3Server) -> dict[str, Any]:
    """s3fs's options for the test server, with a fresh bucket made: ``bucket`` beside them."""
    bucket = s3_server.new_bucket().removeprefix("s3://")
    return {"bucket": bucket, "storage_options": s3_server.storage_options}


@task
def later(value: object) -> object:
    return value


def test_written_objects_read_back(options: dict[str, Any]) -> None:
    """``write_text``/``write_bytes`` put objects; ``read_text``/``read_bytes`` get them."""
    bucket, settings = options["bucket"], options["storage_options"]
    s3 = cs.io.s3
    wrote = [
        s3.write_text(bucket, "a/notes.txt", later("héllo"), storage_options=settings),
        s3.write_bytes(bucket, "b.bin", b"\x00\x01", storage_options=settings),
    ]
    assert cs.run(wrote) == [None, None]
    read = [
        s3.read_text(bucket, "a/notes.txt", storage_options=settings),
        s3.read_bytes(bucket, "b.bin", storage_options=settings),
        s3.read_text(bucket, "a/notes.txt", encoding="latin-1", storage_options=settings),
    ]
    assert cs.run(read) == ["héllo", b"\x00\x01", "héllo".encode().decode("latin-1")]


def test_the_environment_configures_it_as_in_the_cascade_engine(
    options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no ``storage_options``, the AWS environment variables say where and who."""
    settings = options["storage_options"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", settings["endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    bucket = options["bucket"]
    written = cs.io.s3.write_text(bucket, "env.txt", "from the environment")
    assert cs.run(cs.io.s3.read_text(bucket, later("env.txt")).after(written)) == (
        "from the environment"
    )


def test_a_missing_object_fails_its_task(options: dict[str, Any]) -> None:
    """Reading an object that is not there fails ``io.s3.read_text`` with FileNotFoundError."""
    with pytest.raises(cs.TaskFailedError) as raised:
        cs.run(
            cs.io.s3.read_text(
                options["bucket"], "nope", storage_options=options["storage_options"]
            )
        )
    assert raised.value.task_name == "io.s3.read_text"
    assert isinstance(raised.value.exception, FileNotFoundError)


def test_an_object_past_the_read_bound_is_refused(options: dict[str, Any]) -> None:
    """``read_text``/``read_bytes`` read at most ``max_bytes`` of an object (16 MiB by
    default; one byte more asked, a ranged read): past it, ``BoundExceeded`` naming it."""
    bucket, settings = options["bucket"], options["storage_options"]
    s3 = cs.io.s3
    cs.run(s3.write_bytes(bucket, "big.bin", b"v" * 2000, storage_options=settings))
    for read in (s3.read_text, s3.read_bytes):
        with pytest.raises(cs.TaskFailedError) as raised:
            cs.run(read(bucket, "big.bin", storage_options=settings, max_bytes=1000))
        assert isinstance(raised.value.__cause__, cs.BoundExceeded)
        assert "max_bytes=" in str(raised.value.__cause__)
    whole = s3.read_bytes(bucket, "big.bin", storage_options=settings, max_bytes=2000)
    assert cs.run(whole) == b"v" * 2000
    assert cs.run(s3.read_text(bucket, "big.bin", storage_options=settings)) == "v" * 2000
