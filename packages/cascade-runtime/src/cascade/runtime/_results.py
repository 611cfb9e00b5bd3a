"""Where results are kept: a directory or any fsspec URL, each result by its task's fingerprint,
each run's manifest by its id (docs/results.md has the format)."""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from cascade.interfaces.connector_kit import RateLimitedLogger

from ._errors import RerunError

__all__ = [
    "DEFAULT_MAX_RESULT_BYTES",
    "SAME",
    "ManifestTask",
    "ResultMissing",
    "ResultStore",
    "RunManifest",
    "encode_msgpack",
    "open_store",
]

_log = logging.getLogger("cascade.runtime.results")

DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024
"""The largest result kept by default (64 MiB, encoded)."""

_HEX = re.compile(r"[0-9a-f]{6,64}")
_encode_json = msgspec.json.Encoder().encode
encode_msgpack = msgspec.msgpack.Encoder().encode
_decode_msgpack = msgspec.msgpack.Decoder().decode
# what always decodes back as itself (an int too big for msgpack does not encode at all)
SAME = frozenset((type(None), bool, int, float, str, bytes))
_partials = itertools.count()


class ManifestTask(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One task of a run's manifest: its ``name``, its ``task_id`` in that run, its
    ``fingerprint`` (``None``: it has none, ``why_not`` says why), its code's hash (``code``),
    its last ``state`` (``COMPLETED``, ``FAILED``, ``SKIPPED``, ``CANCELLED``), and where its
    result is kept: ``from_run``, the run that computed it (this run, or the one a rerun reused
    it from), ``None`` when it was not kept (``not_kept`` says why)."""

    name: str
    task_id: str
    state: str
    fingerprint: str | None = None
    code: str = ""
    from_run: str | None = None
    not_kept: str | None = None
    why_not: str | None = None


class RunManifest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A run as its results store keeps it, written at its end to ``runs/{run_id}.json``:
    its ``name``, the served ``workflow`` and ``params`` it ran with (when a serving process
    started it), the run it reruns (``rerun_of``) and the first of that line (``root_run``),
    its ``status`` (``Succeeded``, ``Failed``, ``Cancelled``), when it ``started`` and
    ``ended`` (ISO 8601), and its ``tasks`` by stable task key (``name#n``)."""

    run_id: str
    status: str
    tasks: dict[str, ManifestTask]
    name: str | None = None
    workflow: str | None = None
    params: dict[str, Any] | None = None
    rerun_of: str | None = None
    root_run: str | None = None
    started: str = ""
    ended: str = ""


class ResultMissing(Exception):
    """A stored result is not there, or cannot be read; the message says which."""


class ResultStore:
    """Results kept by content: a local directory or any fsspec URL (``memory://``,
    ``s3://bucket/prefix``, ...; ``storage_options`` go to its file system).

    Each result is the msgpack of the task's value at ``results/{fp[:2]}/{fp}``, ``fp`` its
    task's fingerprint; each run's manifest (:class:`RunManifest`, JSON) at
    ``runs/{run_id}.json``. A result is kept only when it is at most ``max_bytes`` encoded
    (default 64 MiB) and decodes back equal to the value. Writes happen in one writer thread
    per store, never on the engine's event loop; reading (:meth:`manifest`, :meth:`read`,
    :meth:`resolve`) blocks the caller.
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        import fsspec  # only where results are kept: it costs its import

        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.url = os.fspath(url)
        self.max_bytes = max_bytes
        fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.fs: Any = fs
        self.root = str(root).rstrip("/")
        self._local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
        self._dirs: set[str] = set()
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log = RateLimitedLogger(_log)

    def __repr__(self) -> str:
        return f"ResultStore({self.url!r}, max_bytes={self.max_bytes})"

    def result_path(self, fingerprint: str) -> str:
        """Where the result of ``fingerprint`` is kept."""
        return f"{self.root}/results/{fingerprint[:2]}/{fingerprint}"

    def manifest_path(self, run_id: str) -> str:
        """Where the manifest of ``run_id`` is kept."""
        return f"{self.root}/runs/{run_id}.json"

    def resolve(self, prefix: str) -> str:
        """The full id of the run whose id is ``prefix`` or starts with it (at least 6 hex
        digits) and whose manifest is kept here; :class:`RerunError` when there is none, or
        several."""
        prefix = prefix.strip().lower()
        if not _HEX.fullmatch(prefix):
            raise RerunError(f"{prefix!r} is not a run id (at least 6 hex digits)")
        if self.fs.exists(self.manifest_path(prefix)):
            return prefix
        try:
            listed = self.fs.ls(f"{self.root}/runs", detail=False)
        except FileNotFoundError:
            listed = []
        found = sorted(
            name[: -len(".json")]
            for path in listed
            if (name := str(path).rstrip("/").rsplit("/", 1)[-1]).endswith(".json")
            and name.startswith(prefix)
        )
        if not found:
            raise RerunError(f"no run {prefix} in the results store {self.url}")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
            raise RerunError(f"run id {prefix} is ambiguous in {self.url}: {shown}")
        return found[0]

    def manifest(self, run_id: str) -> RunManifest:
        """The manifest of the run ``run_id`` (a full id: :meth:`resolve` a prefix first);
        :class:`RerunError` when it is not kept here or cannot be read."""
        try:
            data = self.fs.cat_file(self.manifest_path(run_id))
        except FileNotFoundError:
            raise RerunError(f"no run {run_id} in the results store {self.url}") from None
        try:
            return msgspec.json.decode(data, type=RunManifest)
        except msgspec.DecodeError as exc:
            raise RerunError(f"the manifest of run {run_id} cannot be read: {exc}") from None

    def read(self, fingerprint: str) -> Any:
        """The result kept for ``fingerprint``; :class:`ResultMissing` says why there is none."""
        path = self.result_path(fingerprint)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise ResultMissing(f"its stored result is missing ({path})") from None
        except Exception as exc:
            raise ResultMissing(f"its stored result cannot be read: {_said(exc)}") from None
        try:
            return msgspec.msgpack.decode(data)
        except msgspec.DecodeError as exc:
            raise ResultMissing(f"its stored result cannot be decoded: {exc}") from None

    def exists(self, fingerprint: str) -> bool:
        """Whether a result is kept for ``fingerprint``."""
        return bool(self.fs.exists(self.result_path(fingerprint)))

    def encode(self, value: Any) -> tuple[bytes | None, str]:
        """``value``'s bytes as kept, or ``None`` and why it cannot be kept."""
        try:
            data = encode_msgpack(value)
        except Exception as exc:
            return None, f"{type(value).__name__} cannot be encoded as msgpack: {exc}"
        if len(data) > self.max_bytes:
            return None, f"{len(data):,} bytes encoded, over the bound of {self.max_bytes:,}"
        if type(value) in SAME:
            return data, ""
        try:
            same = _decode_msgpack(data) == value
        except Exception:
            same = False
        if same is not True:
            return None, f"a {type(value).__name__} does not decode back equal from msgpack"
        return data, ""

    def submit(self, work: Callable[[], None]) -> None:
        """Do ``work`` in the store's writer thread, after what was submitted before."""
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._write_loop, name="cascade-results", daemon=True
                    )
                    self._thread.start()
        self._queue.put(work)

    def flushed(self) -> concurrent.futures.Future[None]:
        """A future done once everything submitted before is written (or failed)."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.submit(lambda: done.set_result(None))
        return done

    def write(self, path: str, data: bytes) -> None:
        """Write ``data`` at ``path`` (in the writer thread): a local file whole or not at all."""
        fs = self.fs
        if self._local:
            parent = path.rsplit("/", 1)[0]
            if parent not in self._dirs:
                fs.makedirs(parent, exist_ok=True)
                self._dirs.add(parent)
            partial = f"{path}.{os.getpid()}-{next(_partials)}.partial"
            Path(partial).write_bytes(data)
            os.replace(partial, path)
        else:
            fs.pipe_file(path, data)

    def write_manifest(self, manifest: RunManifest) -> None:
        """Write a run's manifest (in the writer thread)."""
        self.write(self.manifest_path(manifest.run_id), _encode_json(manifest))

    def _write_loop(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            try:
                work()
            except Exception as exc:  # a bug of ours: the writer goes on
                self._log.warning("writer", "results writer failed: %s", _said(exc))


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def open_store(results: object) -> ResultStore | None:
    """``Engine(results=...)``'s store: ``None``/``False`` none, ``True`` ``$CASCADE_RESULTS``
    or ``./.cascade-results``, a path or URL, or a :class:`ResultStore` as it is."""
    if results is None or results is False:
        return None
    if isinstance(results, ResultStore):
        return results
    if results is True:
        return ResultStore(os.environ.get("CASCADE_RESULTS") or ".cascade-results")
    if isinstance(results, (str, os.PathLike)):
        return ResultStore(results)
    raise TypeError(
        f"results must be None, True, a path or URL, or a ResultStore, not {type(results).__name__}"
    )
