"""Where results are kept: a directory or any fsspec URL, each result by its task's fingerprint,
each run's manifest by its id (docs/results.md has the format)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import itertools
import logging
import os
import queue
import re
import stat
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from cascade.connector_kit import RateLimitedLogger
from cascade.interfaces import CascadeError
from cascade.interfaces.serving import RunOrigin

from .._errors import RerunError
from ..workflow._jump import Jump
from ._memory import JournalNote

__all__ = [
    "CacheEntry",
    "DEFAULT_MAX_RESULT_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "CLAIM_FRESH",
    "Claim",
    "KeptTask",
    "SAME",
    "ManifestTask",
    "UNFINISHED",
    "ResultMissing",
    "ResultStore",
    "RunManifest",
    "decode_kept",
    "encode_msgpack",
    "open_store",
]

_log = logging.getLogger("cascade.runtime.results")

DEFAULT_MAX_RESULT_BYTES = 64 * 1024 * 1024
"""The largest result kept by default (64 MiB, encoded)."""
DEFAULT_READ_TIMEOUT = 30.0
"""How long a rerun waits for the results it reuses to be read, by default (seconds)."""
MAX_MANIFEST_BYTES = 256 * 1024 * 1024
"""The largest manifest read (256 MiB: a run of millions of tasks)."""

_HEX = re.compile(r"[0-9a-f]{6,64}")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
_encode_json = msgspec.json.Encoder().encode
_JUMP = 1
"""The msgpack extension type of a kept :class:`~cascade.runtime.Jump` (a loop's iteration's
result): the msgpack of ``[target_key, data]``."""


def _kept_form(value: Any) -> Any:
    if type(value) is Jump:
        return msgspec.msgpack.Ext(_JUMP, encode_msgpack([value.target_key, value.data]))
    raise TypeError(f"a {type(value).__name__} has no msgpack form")


def _from_ext(code: int, data: memoryview) -> Any:
    if code == _JUMP:
        pair = decode_kept(data)
        if type(pair) is not list or len(pair) != 2:  # a file that lies: no jump
            raise msgspec.DecodeError("a kept jump is no [target_key, data]")
        return Jump(*pair)
    return msgspec.msgpack.Ext(code, bytes(data))


encode_msgpack = msgspec.msgpack.Encoder(enc_hook=_kept_form).encode
decode_kept = msgspec.msgpack.Decoder(ext_hook=_from_ext).decode
"""A kept result's value from its bytes (a loop's jump as a :class:`Jump`)."""
# what always decodes back as itself (an int too big for msgpack does not encode at all)
SAME = frozenset((type(None), bool, int, float, str, bytes))
_partials = itertools.count()


def over_bound(value: Any, limit: int) -> bool:
    """Whether ``value``'s lists, tuples and dicts, walked as an encoder would (a value held
    twice counted twice), surely encode to more than ``limit`` bytes: each item at least a
    byte, a text or bytes value its length too. Nothing is built, and the walk stops once past
    ``limit``, so a value of a few shared lists that stands for gigabytes is refused before
    it is encoded whole (a cycle too)."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            size += 1 + 2 * len(item)
            parts: Any = item.values()  # each key counted a byte above: a lower bound
        elif type(item) is list or type(item) is tuple:
            size += 1 + len(item)
            parts = item
        else:
            continue
        for part in parts:
            kind = type(part)
            if kind is str or kind is bytes:
                size += len(part)
            elif kind is list or kind is tuple or kind is dict:
                stack.append(part)
        if size > limit:
            return True
    return False


class ManifestTask(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One task of a run's manifest: its ``name``, its ``task_id`` in that run, its
    ``fingerprint`` (``None``: it has none, ``why_not`` says why), its code's hash (``code``),
    its last ``state`` (``COMPLETED``, ``FAILED``, ``SKIPPED``, ``CANCELLED``), and where its
    result is kept: ``from_run``, the run that computed it (this run, or the one a rerun reused
    it from), ``None`` when it was not kept (``not_kept`` says why); a kept result's ``size``
    (bytes) and ``sha256`` (hex), which a rerun checks before it believes the file; in a
    rerun, ``refused``: why the stored result it would have reused was not believed (it
    ran); for a task cached in the store (``with_cache``), why the result its cache had was
    not taken (it ran), and ``from_run`` the run it took one from; ``written_by``: the
    Dask worker that wrote the kept file, where one did (else the engine wrote it);
    ``skipped``: why a ``SKIPPED`` task was skipped, as its event said (``not routed``,
    ``upstream task 'a' (a-1) failed``; absent from engines before it)."""

    name: str
    task_id: str
    state: str
    fingerprint: str | None = None
    code: str = ""
    from_run: str | None = None
    size: int | None = None
    sha256: str | None = None
    not_kept: str | None = None
    why_not: str | None = None
    refused: str | None = None
    written_by: str | None = None
    skipped: str | None = None


class RunManifest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A run as its results store keeps it, written at its end to ``runs/{run_id}.json``:
    its ``name``, the served ``workflow`` and ``params`` it ran with (when a serving process
    started it), the run it reruns (``rerun_of``) and the first of that line (``root_run``),
    its ``status`` (``Succeeded``, ``Failed``, ``Cancelled``), when it ``started`` and
    ``ended`` (ISO 8601), its ``tasks`` by stable task key (``name#n``), and where it came from
    (``origin``, as its ``ENGINE_STARTED`` says: who asked and why, a schedule's slot, the run
    it carries on), also in its journal's head, and the engine that ran it (``source``: its
    connector's source id; ``None`` for a run without one), which a server that would carry
    the run on checks against the server whose death it heard (docs/durability.md). An
    :data:`UNFINISHED` manifest (made from a journal) has ``notes`` too, by stable task key:
    what its journal last noted of each task it had not finished (its failed attempts, its
    hold: :class:`JournalNote`), which a carry-on goes on from."""

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
    origin: RunOrigin | None = None
    notes: dict[str, JournalNote] | None = None
    source: str | None = None


UNFINISHED = "Unfinished"
"""The status of the manifest of a run that began and wrote no manifest: its engine died, or it
runs still (the store cannot tell which): made from its journal (:meth:`ResultStore.manifest`)."""


class KeptTask(msgspec.Struct, kw_only=True, gc=False):
    """A line of a live run's journal, ``runs/{run_id}/kept/{n}.json`` (a list of them): a
    task's stable ``key`` and its manifest row as it completed, its result just kept; or, with
    a ``note`` (its row's ``state`` the note's: ``RETRYING``, ``HELD``, ``DECIDED``,
    ``FAILED``, no ``from_run``), what happened to an attempt of a task not finished."""

    key: str
    task: ManifestTask
    note: JournalNote | None = None


class Claim(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What a serving engine took in a shared store (:meth:`ResultStore.claim_start`,
    :meth:`ResultStore.claim_rerun`): the ``run_id`` it started for it, its ``source``, when
    (``at``, epoch seconds), and the file that says so (``path``, not in the file)."""

    run_id: str
    source: str
    at: float
    path: str = ""


class CacheEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The newest result kept for a fingerprint by a task cached in the store (``with_cache``),
    at ``cache/{fp[:2]}/{fp}.json``: the run that kept it (``run_id``), when (``at``, epoch
    seconds), its file's ``size`` and ``sha256`` (hex), and the task's ``name``. Written after
    the result's file, whole (replacing the one before), by the engine that kept it."""

    run_id: str
    at: float
    size: int
    sha256: str
    name: str = ""


_MAX_CACHE_ENTRY_BYTES = 4096

CLAIM_FRESH = 60.0
"""How long a rerun's claim holds the run it reruns against other servers' reruns, unless its
run ended before (seconds): past it, the claiming server's announcement lists the rerun live."""
_MAX_CLAIM_BYTES = 4096
_GENERATION = re.compile(r"[0-9]{1,12}\.json")
_MAX_LINE = 64  # unfinished runs read down a line of reruns, at most


def _server_file(source: str) -> str:
    """A server's file in ``servers/``: its source id's digest (a file name whatever the id)."""
    return f"{hashlib.sha256(source.encode()).hexdigest()[:32]}.json"


def _generation(path: str) -> int:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return int(name[: -len(".json")]) if _GENERATION.fullmatch(name) else -1


class ResultMissing(CascadeError):
    """A stored result is not there, cannot be read, or is not the one kept: ``detail`` says
    which (``is missing``, ``is not a regular file``, ...; the message is ``its stored result
    {detail}``)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"its stored result {detail}")
        self.detail = detail


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

    probe_timeout: float = 10.0
    """How long a serving engine's probe of this store at serve start waits for it (seconds;
    :meth:`creates_exclusively`): past it, the store is said not probed. Serving never waits
    for the probe."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        import fsspec  # only where results are kept: it costs its import

        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        if not read_timeout > 0:
            raise ValueError(f"read_timeout must be > 0 seconds, not {read_timeout}")
        self.url = os.fspath(url)
        self.max_bytes = max_bytes
        self.read_timeout = read_timeout
        self.storage_options = storage_options
        # other servers write the store meanwhile: a listing is read afresh each time (s3fs
        # kept each one, unexpired, for as long as the process lived), unless told otherwise
        options = {"use_listings_cache": False, **(storage_options or {})}
        fs, root = fsspec.core.url_to_fs(self.url, **options)
        self.fs: Any = fs
        self.root = str(root).rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocols
        # where another process opens this store: a local directory by its absolute path; none
        # for a store in this process's memory
        self.shared_url: str | None = (
            None if "memory" in protocols else self.root if self._local else self.url
        )
        self._dirs: set[str] = set()
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._claims = threading.RLock()
        self._log = RateLimitedLogger(_log)

    def __repr__(self) -> str:
        return f"ResultStore({self.url!r}, max_bytes={self.max_bytes})"

    def result_path(self, fingerprint: str) -> str:
        """Where the result of ``fingerprint`` is kept."""
        return f"{self.root}/results/{fingerprint[:2]}/{fingerprint}"

    def manifest_path(self, run_id: str) -> str:
        """Where the manifest of ``run_id`` is kept."""
        return f"{self.root}/runs/{run_id}.json"

    def cache_path(self, fingerprint: str) -> str:
        """Where the cache entry of ``fingerprint`` is kept (:class:`CacheEntry`)."""
        return f"{self.root}/cache/{fingerprint[:2]}/{fingerprint}.json"

    def cache_entry(self, fingerprint: str) -> CacheEntry | None:
        """The cache entry of ``fingerprint``, ``None`` when there is none (it blocks: call it
        off the event loop); :class:`ResultMissing` when it is not one (not a regular file,
        reached through a link, too big, malformed: ``its cache entry ...``)."""
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise ResultMissing(f"is named by no fingerprint ({fingerprint[:80]!r})")
        parts = ("cache", fingerprint[:2], f"{fingerprint}.json")
        try:
            data = self._read_file(parts, None, _MAX_CACHE_ENTRY_BYTES)
            return msgspec.json.decode(data, type=CacheEntry)
        except FileNotFoundError:
            return None
        except ResultMissing as exc:
            raise ResultMissing(f"has a cache entry that {exc.detail}") from None
        except OSError as exc:
            raise ResultMissing(f"has a cache entry that cannot be read: {_said(exc)}") from None
        except msgspec.DecodeError as exc:
            raise ResultMissing(f"has a cache entry that is not one: {exc}") from None

    def write_cache_entry(self, fingerprint: str, entry: CacheEntry) -> None:
        """Write the cache entry of ``fingerprint`` (in the writer thread), replacing any."""
        self.write(self.cache_path(fingerprint), _encode_json(entry))

    def resolve(self, prefix: str) -> str:
        """The full id of the run whose id is ``prefix`` or starts with it (at least 6 hex
        digits) and whose manifest is kept here; :class:`RerunError` when there is none, or
        several."""
        prefix = prefix.strip().lower()
        if not _HEX.fullmatch(prefix):
            raise RerunError(f"{prefix!r} is not a run id (at least 6 hex digits)")
        if self.fs.exists(self.manifest_path(prefix)) or self.fs.exists(
            f"{self.root}/runs/{prefix}/began.json"
        ):
            return prefix
        try:
            listed = self.fs.ls(f"{self.root}/runs", detail=False)
        except FileNotFoundError:
            listed = []
        found = sorted(
            {
                name.removesuffix(".json")  # a manifest, or an unfinished run's journal
                for path in listed
                if (name := str(path).rstrip("/").rsplit("/", 1)[-1]).startswith(prefix)
                and _HEX.fullmatch(name.removesuffix(".json"))
            }
        )
        if not found:
            raise RerunError(f"no run {prefix} in the results store {self.url}")
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
            raise RerunError(f"run id {prefix} is ambiguous in {self.url}: {shown}")
        return found[0]

    def manifest(self, run_id: str) -> RunManifest:
        """The manifest of the run ``run_id`` (a full id: :meth:`resolve` a prefix first);
        :class:`RerunError` when it is not kept here or cannot be read. A run that began and
        wrote no manifest (its engine died, or it runs still) has one made from its journal:
        status :data:`UNFINISHED`, the tasks whose results it kept ``COMPLETED``."""
        return self._manifest(run_id, 0)

    def _manifest(self, run_id: str, depth: int) -> RunManifest:
        """:meth:`manifest`, ``depth`` unfinished runs down a line of reruns (a journal that
        names a run that reruns it, written by whoever may write the store, ends there)."""
        try:
            data = self._read_file(("runs", f"{run_id}.json"), None, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            unfinished = self._unfinished(run_id, depth)
            if unfinished is None:
                raise RerunError(f"no run {run_id} in the results store {self.url}") from None
            return unfinished
        except ResultMissing as exc:
            raise RerunError(f"the manifest of run {run_id} {exc.detail}") from None
        except OSError as exc:
            raise RerunError(f"the manifest of run {run_id} cannot be read: {_said(exc)}") from None
        try:
            return msgspec.json.decode(data, type=RunManifest)
        except msgspec.DecodeError as exc:
            raise RerunError(f"the manifest of run {run_id} cannot be read: {exc}") from None

    def _unfinished(self, run_id: str, depth: int = 0) -> RunManifest | None:
        """The manifest of ``run_id`` made from its journal: what it began with and each task
        whose result it kept; ``None`` without a journal. A journal's file that cannot be read
        is passed over (its tasks run again)."""
        try:
            data = self._read_file(("runs", run_id, "began.json"), None, _MAX_CLAIM_BYTES * 64)
            began = msgspec.json.decode(data, type=RunManifest)
        except (OSError, ResultMissing, msgspec.DecodeError):
            return None
        if began.run_id != run_id:
            return None
        try:
            listed = self.fs.ls(f"{self.root}/runs/{run_id}/kept", detail=False)
        except FileNotFoundError:
            listed = []
        tasks: dict[str, ManifestTask] = {}
        notes: dict[str, JournalNote] = {}  # the last of each task's
        for path in sorted(listed, key=lambda p: _generation(str(p))):
            name = str(path).rstrip("/").rsplit("/", 1)[-1]
            if not _GENERATION.fullmatch(name):
                continue
            try:
                data = self._read_file(("runs", run_id, "kept", name), None, MAX_MANIFEST_BYTES)
                lines = msgspec.json.decode(data, type=list[KeptTask])
            except (OSError, ResultMissing, msgspec.DecodeError) as exc:
                _log.warning("run %s's journal file %s is passed over: %s", run_id, name, exc)
                continue
            for line in lines:
                if line.note is not None:
                    notes[line.key] = line.note
                elif line.task.from_run is not None and line.task.state == "COMPLETED":
                    tasks[line.key] = line.task
        if began.rerun_of is not None and depth < _MAX_LINE:  # what it reused, not journaled
            try:
                earlier = self._manifest(began.rerun_of, depth + 1)
            except RerunError:
                earlier = None
            if earlier is not None:
                for key, task in earlier.tasks.items():
                    if key not in tasks and task.from_run is not None:
                        tasks[key] = msgspec.structs.replace(task, state="COMPLETED")
                carried = (
                    began.origin is not None and began.origin.carried_on_from == began.rerun_of
                )
                if carried and earlier.notes:  # a carry-on went on from them: so does its own
                    for key, note in earlier.notes.items():
                        if key not in tasks:
                            notes.setdefault(key, note)
        return msgspec.structs.replace(
            began,
            status=UNFINISHED,
            tasks=tasks,
            notes={k: notes[k] for k in notes if k not in tasks} or None,
        )

    def write_began(self, began: RunManifest) -> None:
        """Write what a run began with (its manifest without tasks), the head of its journal
        (in the writer thread)."""
        self.write(f"{self.root}/runs/{began.run_id}/began.json", _encode_json(began))

    def write_kept(self, run_id: str, generation: int, lines: list[KeptTask]) -> None:
        """Write a batch of a live run's journal: the tasks whose results were just kept (in the
        writer thread, after their results' files: a line names a file written)."""
        self.write(f"{self.root}/runs/{run_id}/kept/{generation}.json", _encode_json(lines))

    def forget_journal(self, run_id: str) -> None:
        """Remove a run's journal, its manifest written (in the writer thread)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(f"{self.root}/runs/{run_id}", recursive=True)

    def read(self, fingerprint: str, *, size: int | None = None, sha256: str | None = None) -> Any:
        """The result kept for ``fingerprint``, decoded; :class:`ResultMissing` says why there is
        none. ``size`` and ``sha256``, a manifest's: the file must be those bytes
        (:meth:`read_bytes`)."""
        data = self.read_bytes(fingerprint, size=size, sha256=sha256)
        try:
            return decode_kept(data)
        except msgspec.DecodeError as exc:
            raise ResultMissing(f"cannot be decoded: {exc}") from None

    def read_bytes(
        self, fingerprint: str, *, size: int | None = None, sha256: str | None = None
    ) -> bytes:
        """The bytes kept for ``fingerprint``, proven: a regular file at its own path, reached
        through no symbolic link (in a local store), at most ``max_bytes``, and, where given,
        of ``size`` bytes whose ``sha256`` (hex) is the one given, checked before anything
        decodes it; :class:`ResultMissing` says why not."""
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise ResultMissing(f"is named by no fingerprint ({fingerprint[:80]!r})")
        if size is not None and size > self.max_bytes:
            raise ResultMissing(f"is {_bytes(size)}, over max_bytes ({self.max_bytes:,})")
        bound = self.max_bytes if size is None else size
        try:
            data = self._read_file(("results", fingerprint[:2], fingerprint), size, bound)
        except FileNotFoundError:
            raise ResultMissing("is missing") from None
        except OSError as exc:
            raise ResultMissing(f"cannot be read: {_said(exc)}") from None
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise ResultMissing("is not the one its run kept (its sha256 differs)")
        return data

    def _read_file(self, parts: tuple[str, ...], size: int | None, bound: int) -> bytes:
        """The bytes of the regular file at ``parts`` under the root: at most ``bound`` of
        them, exactly ``size`` where given, checked before they are read whole."""
        if self._local:
            return _read_local(self.root, parts, size, bound)
        path = "/".join((self.root, *parts))
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise ResultMissing(f"is not a regular file ({info.get('type')})")
        _check_size(info.get("size"), size, bound)
        with self.fs.open(path, "rb") as file:
            data = file.read(bound + 1)
        _check_size(len(data), size, bound)
        return bytes(data)

    def exists(self, fingerprint: str) -> bool:
        """Whether a result is kept for ``fingerprint``."""
        return bool(self.fs.exists(self.result_path(fingerprint)))

    def claim_start(self, request_id: str, claim: Claim) -> Claim:
        """Take the start request ``request_id`` for ``claim``'s run, once across every server
        sharing this store (a file created exclusively, ``claims/starts/{request_id}.json``):
        the claim that holds it, ``claim`` (with its ``path``) when this one took it."""
        return self._create(("claims", "starts", f"{request_id}.json"), claim)

    def enter_server(self, source: str) -> None:
        """Say in this store that the server ``source`` keeps its results here (a file created
        once, ``servers/{digest}.json``), so that another server can tell it shares the store
        with ``source`` (:meth:`shared_with`)."""
        self._create(
            ("servers", _server_file(source)), Claim(run_id="", source=source, at=time.time())
        )

    def shared_with(self, source: str) -> bool:
        """Whether the server ``source`` keeps its results in this store (it said so:
        :meth:`enter_server`)."""
        return bool(self.fs.exists("/".join((self.root, "servers", _server_file(source)))))

    def began(self, run_id: str) -> bool:
        """Whether the run ``run_id`` began in this store: its journal's head, or its manifest,
        is written."""
        fs = self.fs
        return bool(fs.exists(f"{self.root}/runs/{run_id}/began.json")) or bool(
            fs.exists(self.manifest_path(run_id))
        )

    def start_claim(self, request_id: str) -> Claim | None:
        """The claim that took the start request ``request_id``; ``None`` when none did (or it
        cannot be read)."""
        return self._read_claim(("claims", "starts", f"{request_id}.json"))

    def claim_rerun(self, rerun_of: str, claim: Claim) -> Claim:
        """Take the rerun of ``rerun_of`` for ``claim``'s run, once across every server sharing
        this store: the claim that holds it, ``claim`` (with its ``path``) when this one took
        it. A run's reruns are numbered claims (``claims/reruns/{rerun_of}/{n}.json``, each
        created exclusively): the last one holds while its run has no manifest, for
        :data:`CLAIM_FRESH` seconds after it was taken (one dated further ahead than that, by
        whoever may write the store, holds nothing); then the next may be taken."""
        folder = ("claims", "reruns", rerun_of)
        with self._claims:  # the store's exclusive create, made so within this process too
            try:
                listed = self.fs.ls("/".join((self.root, *folder)), detail=False)
            except FileNotFoundError:
                listed = []
            numbers = [
                int(name[: -len(".json")])
                for path in listed
                if _GENERATION.fullmatch(name := str(path).rstrip("/").rsplit("/", 1)[-1])
            ]
            last = max(numbers, default=0)
            if last:
                held = self._read_claim((*folder, f"{last}.json"))
                if (
                    held is not None
                    and abs(claim.at - held.at) < CLAIM_FRESH  # one dated ahead: no hold
                    and not self.fs.exists(self.manifest_path(held.run_id))
                ):
                    return held
            return self._create((*folder, f"{last + 1}.json"), claim)

    def creates_exclusively(self) -> bool:
        """Whether two creates of one new file in this store let the first alone succeed, as
        the claims of served runs, schedule slots and reruns need (:meth:`claim_start`,
        :meth:`claim_rerun`): a new file, ``probe-{hex}.json``, created twice, the second opened
        before the first is written (a store that checks, then writes, lets both through).
        The probe's file is removed. It blocks (call it off the event loop) and raises what
        the store raises."""
        name = f"probe-{uuid.uuid4().hex}.json"  # in the root: no folder to remove after
        path = f"{self.root}/{name}"
        if self._local:  # the claims' own create (a link), twice
            first = Claim(run_id="first", source="probe", at=time.time())
            try:
                self._create((name,), first)
                held = self._create((name,), Claim(run_id="second", source="probe", at=0))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            return held.run_id == "first"
        try:
            with self.fs.open(path, "xb") as first_file:
                try:
                    second_file = self.fs.open(path, "xb")
                except FileExistsError:  # refused as the first was opened
                    return True
                first_file.write(b"first")
            second_file.write(b"second")
            try:
                second_file.close()
            except FileExistsError:  # refused as it was written (S3's conditional put)
                return True
            return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(path)

    def release(self, claim: Claim) -> None:
        """Give back a claim this server took for a run it did not start after all."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(claim.path)

    def _create(self, parts: tuple[str, ...], claim: Claim) -> Claim:
        path = "/".join((self.root, *parts))
        data = _encode_json(msgspec.structs.replace(claim, path=""))
        with self._claims:
            try:
                if self._local:  # written whole aside, then linked: never seen half-written
                    os.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
                    partial = f"{path}.{os.getpid()}-{next(_partials)}.partial"
                    Path(partial).write_bytes(data)
                    try:
                        os.link(partial, path)
                    finally:
                        os.unlink(partial)
                else:
                    with self.fs.open(path, "xb") as file:
                        file.write(data)
            except FileExistsError:
                held = self._read_claim(parts)
                return held or Claim(run_id="", source="", at=0.0, path=path)  # unreadable
        return msgspec.structs.replace(claim, path=path)

    def _read_claim(self, parts: tuple[str, ...]) -> Claim | None:
        """The claim at ``parts``; ``None`` when it is not one (gone, not a regular file,
        malformed: anyone who may write the store may write there)."""
        try:
            data = self._read_file(parts, None, _MAX_CLAIM_BYTES)
            claim = msgspec.json.decode(data, type=Claim)
        except (OSError, ResultMissing, msgspec.DecodeError):
            return None
        return msgspec.structs.replace(claim, path="/".join((self.root, *parts)))

    def encode(self, value: Any) -> tuple[bytes | None, str]:
        """``value``'s bytes as kept, or ``None`` and why it cannot be kept."""
        if type(value) not in SAME and over_bound(value, self.max_bytes):
            return None, f"over the bound of {self.max_bytes:,} bytes (seen before encoding)"
        try:
            data = encode_msgpack(value)
        except Exception as exc:
            return None, f"{type(value).__name__} cannot be encoded as msgpack: {exc}"
        if len(data) > self.max_bytes:
            return None, f"{len(data):,} bytes encoded, over the bound of {self.max_bytes:,}"
        if type(value) in SAME:
            return data, ""
        try:
            same = decode_kept(data) == value
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


# opened without following a link, nor waiting on a FIFO's writer; where the platform lacks
# these (Windows), the checks after opening still refuse what is not a regular file
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_BY_DIR_FD = os.open in os.supports_dir_fd and _NOFOLLOW != 0


def _read_local(root: str, parts: tuple[str, ...], size: int | None, bound: int) -> bytes:
    """Read ``root/parts...`` as :meth:`ResultStore._read_file` says, each level below the
    root opened relative to the one above, following no link."""
    if _BY_DIR_FD:
        fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            for level in parts[:-1]:
                try:
                    below = os.open(level, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise _refused(exc, level, fd) from None
                os.close(fd)
                fd = below
            try:
                file = os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refused(exc, parts[-1], fd) from None
        finally:
            os.close(fd)
    else:  # pragma: no cover - Windows
        path = os.path.join(root, *parts)
        if any(os.path.islink(os.path.join(root, *parts[:n])) for n in range(1, len(parts) + 1)):
            raise ResultMissing("is reached through a symbolic link")
        file = os.open(path, _FILE_FLAGS)
    with os.fdopen(file, "rb", buffering=0) as opened:
        found = os.fstat(file)
        if not stat.S_ISREG(found.st_mode):
            raise ResultMissing("is not a regular file")
        _check_size(found.st_size, size, bound)
        data = opened.read(bound + 1)
    _check_size(len(data), size, bound)
    return data


def _refused(exc: OSError, name: str, dir_fd: int) -> OSError | ResultMissing:
    """What opening ``name`` (in ``dir_fd``) without following links raised, said: a link is
    refused (Linux says ``ELOOP`` for a file, ``ENOTDIR`` for a directory expected)."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, getattr(errno, "EMLINK", -1)):
        try:
            found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return exc
        if stat.S_ISLNK(found.st_mode):
            return ResultMissing("is reached through a symbolic link")
        return ResultMissing(f"is reached through {name}, which is not a directory")
    return exc


def _check_size(found: object, size: int | None, bound: int) -> None:
    if not isinstance(found, int):
        return  # a file system that does not say: the bounded read below checks it
    if size is not None and found != size:
        raise ResultMissing(f"is {_bytes(found)}, not the {_bytes(size)} its run kept")
    if found > bound:
        raise ResultMissing(f"is over {_bytes(bound)}")


def _bytes(count: int) -> str:
    return "1 byte" if count == 1 else f"{count:,} bytes"


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
