"""An S3 server of the tests' own: moto's, over HTTP on a free loopback port, in a thread of the
test's process; what a results store on it needs, for this process and for child processes; and
the results store servers share, in a directory or in a bucket of it (``shared_store``)."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ._families import broker_family

__all__ = ["S3_STORE_FAMILIES", "S3Server", "SharedStore", "s3_server", "shared_store"]


class S3Server:
    """moto's S3 server on a free loopback port, started when made (:meth:`stop` it). Needs
    ``moto[server]`` and, to open its buckets, ``s3fs``.

    :attr:`storage_options` are s3fs's options for it (a ``ResultStore``'s
    ``storage_options``); :attr:`environment` says the same to a child process through the AWS
    variables, as a deployed engine is configured; :meth:`new_bucket` makes a bucket of its
    own for a test and gives its ``s3://`` URL."""

    def __init__(self) -> None:
        server = importlib.import_module("moto.server")
        self._server: Any = server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.storage_options: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "eu-west-1"},
        }
        self.environment = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }

    def new_bucket(self) -> str:
        """A new empty bucket's URL (``s3://b-<hex>``)."""
        import fsspec

        bucket = f"b-{uuid.uuid4().hex[:12]}"
        fsspec.filesystem("s3", skip_instance_cache=True, **self.storage_options).mkdir(bucket)
        return f"s3://{bucket}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """An :class:`S3Server` for the session (skipped without ``moto[server]`` or ``s3fs``)."""
    pytest.importorskip("moto.server", reason="moto[server] is the tests' S3 server")
    pytest.importorskip("s3fs", reason="s3fs opens its buckets")
    server = S3Server()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class SharedStore:
    """A results store that servers share: its ``kind`` (``directory``, ``s3``), its ``url`` as
    they are told it, the ``storage_options`` this process opens it with, and the
    ``environment`` a child process needs to reach it."""

    kind: str
    url: str
    storage_options: dict[str, Any] | None = None
    environment: dict[str, str] = field(default_factory=dict)


S3_STORE_FAMILIES = ("mosquitto", "rabbitmq")
"""The broker families whose sessions also run the tests of ``shared_store`` on S3 (CI's time:
the store's part is the same on every broker)."""


@pytest.fixture(
    params=[
        "directory",
        pytest.param(
            "s3",
            marks=pytest.mark.skipif(
                broker_family() not in S3_STORE_FAMILIES,
                reason=f"the S3 variants run on {' and '.join(S3_STORE_FAMILIES)}",
            ),
        ),
    ]
)
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> SharedStore:
    """Each test that takes it twice: the shared results store in a directory, then in a new
    bucket of the session's :class:`S3Server` (which servers reach through the AWS variables
    of its ``environment``)."""
    if request.param == "directory":
        return SharedStore("directory", str(tmp_path / "results"))
    s3: S3Server = request.getfixturevalue("s3_server")
    url = f"{s3.new_bucket()}/results"
    return SharedStore("s3", url, s3.storage_options, s3.environment)
