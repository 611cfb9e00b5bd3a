"""Kept results written where their task ran: what an engine ships with an attempt bound for a
Dask worker (:class:`WorkerKeep`), what runs there once the task's body has returned
(:func:`keep_on_worker`: the engine's encoding, file and proof, in the worker's process), and
what comes back (:class:`Report`), which the engine checks before its manifest names the file."""

from __future__ import annotations

import hashlib
import pickle
from typing import Any

from .._steps import describe
from ._results import ResultStore

__all__ = ["Report", "WorkerKeep", "keep_on_worker"]


class Report:
    """What a worker did with a result: kept it (``size`` bytes whose ``sha256`` is given), or
    not (``not_kept``: why it cannot be kept; ``failed``: why its write failed)."""

    __slots__ = ("failed", "not_kept", "sha256", "size")

    def __init__(
        self,
        size: int = 0,
        sha256: str = "",
        not_kept: str | None = None,
        failed: str | None = None,
    ) -> None:
        self.size = size
        self.sha256 = sha256
        self.not_kept = not_kept
        self.failed = failed

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.size, self.sha256, self.not_kept, self.failed)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.size, self.sha256, self.not_kept, self.failed = state


class WorkerKeep:
    """Where and as what a worker keeps one attempt's result: the run's store (its URL, its
    file system's options, its ``max_bytes``) and the task's ``fingerprint``. ``report``, on
    the engine's side: the :class:`Report` its attempt came back with, and ``worker``: the
    address of the worker that made it."""

    __slots__ = ("fingerprint", "max_bytes", "report", "storage_options", "url", "worker")

    def __init__(self, store: ResultStore, fingerprint: str) -> None:
        assert store.shared_url is not None  # a store in the engine's memory is not shipped
        self.url = store.shared_url
        self.storage_options = store.storage_options
        self.max_bytes = store.max_bytes
        self.fingerprint = fingerprint
        self.report: Report | None = None
        self.worker: str | None = None

    def __getstate__(self) -> tuple[Any, ...]:  # the report never travels to the worker
        return (self.url, self.storage_options, self.max_bytes, self.fingerprint)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.url, self.storage_options, self.max_bytes, self.fingerprint = state
        self.report = self.worker = None


_stores: dict[bytes, ResultStore] = {}  # in a worker's process: one store per URL and options


def keep_on_worker(keep: WorkerKeep, value: Any) -> Report:
    """On the worker, ``value`` just returned by its task: encoded and written as the engine
    would (:meth:`ResultStore.encode`, :meth:`ResultStore.write`), its size and sha256
    reported; never raises (what went wrong is in the report)."""
    try:
        key = pickle.dumps((keep.url, keep.max_bytes, keep.storage_options))
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = ResultStore(
                keep.url, max_bytes=keep.max_bytes, storage_options=keep.storage_options
            )
        data, reason = store.encode(value)
        if data is None:
            return Report(not_kept=reason)
        store.write(store.result_path(keep.fingerprint), data)
    except Exception as exc:
        return Report(failed=describe(exc))
    return Report(len(data), hashlib.sha256(data).hexdigest())
