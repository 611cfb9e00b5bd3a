"""New files matching a glob in any fsspec store (a directory, S3, ...), polled: each file once
per version, a storm bounded per poll, a listing that fails said, and nothing listed trusted
beyond being data under the pattern's root. The poller a file trigger calls (docs/triggers.md);
who starts what, once across servers, is the trigger's."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cascade.connector_kit import RateLimitedLogger, bounded
from cascade.interfaces import CascadeError

from .._steps import explain

__all__ = ["FileEvent", "FileWatch", "FileWatchError", "FileWatchStats"]

_log = logging.getLogger("cascade.runtime.serve")

_MAGIC = ("*", "?", "[")
# the version of a file in a store's listing, first found first (S3's, GCS's, Azure's)
_VERSION_KEYS = ("VersionId", "version_id", "ETag", "etag", "generation")
# a file's modification time in a store's listing, first found first
_TIME_KEYS = ("LastModified", "last_modified", "mtime", "modified", "updated", "created")


@dataclass(frozen=True)
class FileEvent:
    """A file new to a :class:`FileWatch`, or rewritten since it was last seen."""

    path: str
    """The file as the glob's protocol spells it: ``s3://bucket/in/a.csv``, ``/dir/in/a.csv``
    (a local pattern's path is absolute)."""
    version: str
    """What makes its content new: the store's version or ETag (S3: the ETag, unquoted),
    ``{mtime_ns}:{size}`` for a local file; elsewhere its modification time and size."""
    size: int | None
    """Its size in bytes, when the listing says."""
    modified: str | None
    """When it was last modified, ISO 8601 in UTC, when the listing says."""


_File = tuple[FileEvent, tuple[Any, ...]]
"""A listed file's event and its order (oldest first, then by path; a time unknown last)."""
_Listing = tuple[list[_File], int]
"""A listing's files and how many of its names were refused."""


class FileWatchError(CascadeError):
    """A listing of a :class:`FileWatch`'s pattern failed (a missing bucket or directory, a
    permission refused, a listing that did not end): :attr:`pattern` and :attr:`reason` say
    which and why. The next poll lists again."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"files {pattern!r} could not be listed: {reason}")
        self.pattern = pattern
        self.reason = reason


@dataclass
class FileWatchStats:
    """What a :class:`FileWatch` did: ``polls``, ``failed`` (polls whose listing failed) and
    ``new`` (events given) since it was made; ``listed`` (files matching), ``deferred`` (new
    files left for later polls) and ``refused`` (names refused: outside the pattern's root,
    or not a regular file) as of its last listing."""

    polls: int = 0
    failed: int = 0
    listed: int = 0
    new: int = 0
    deferred: int = 0
    refused: int = 0


class FileWatch:
    """The files matching ``pattern`` (a glob: ``s3://bucket/in/*.csv``, ``/dir/in/*.csv``,
    ``**`` for any depth; any protocol fsspec knows, ``storage_options`` given to its file
    system), polled: :meth:`poll` gives the files new or rewritten since the last poll.

    The first poll gives none, only learns what is there (with ``catchup``, all of it is new).
    A file is given once per version (:attr:`FileEvent.version`); what is remembered is only
    what the last listing held, so a deleted file is forgotten (and new again if it comes
    back). A poll gives at most ``max_per_poll`` files, oldest first then by path; the rest
    are given by the next polls, still oldest first.

    The pattern is checked when made (``ValueError``; ``ImportError`` when its protocol's
    package is not installed, as ``s3fs`` for ``s3://``: ``cascade-runtime[s3]``). The root
    of a pattern is its part before the first wildcard: a listed name is given only when it
    is under that root with no ``.`` or ``..`` part, and, in a directory, only when it is a
    regular file (a link is not followed); any other is refused, counted and logged. Names are
    data: nothing here hands them to a shell or opens them.
    """

    listing_timeout: float = 120.0
    """How long a poll waits for its listing (seconds): past it, the poll fails
    (:class:`FileWatchError`) and the listing, in a daemon thread of its own, goes on; the
    next poll waits for it rather than start another."""

    def __init__(
        self,
        pattern: str,
        *,
        catchup: bool = False,
        storage_options: Mapping[str, Any] | None = None,
        max_per_poll: int = 1000,
    ) -> None:
        import fsspec  # only where files are watched: it costs its import

        if not isinstance(pattern, str):
            raise TypeError(f"a file pattern is a string, not {type(pattern).__name__}")
        if isinstance(max_per_poll, bool) or not isinstance(max_per_poll, int):
            raise TypeError(f"max_per_poll must be an int, not {type(max_per_poll).__name__}")
        if max_per_poll < 1:
            raise ValueError(f"max_per_poll must be >= 1, not {max_per_poll}")
        if not pattern.strip() or any(ord(c) < 32 or ord(c) == 127 for c in pattern):
            raise ValueError(f"files {pattern!r}: a pattern is a glob, without control characters")
        self.pattern = pattern
        self.catchup = catchup
        self.max_per_poll = max_per_poll
        self.stats = FileWatchStats()
        protocol, _ = fsspec.core.split_protocol(pattern)
        # an event's path is spelled as the pattern's: its protocol as written, or a plain path
        self._prefix = pattern[: pattern.index("://") + 3] if protocol is not None else ""
        # a plain path is made absolute and normal (``..`` resolved) here, once
        url = pattern if protocol is not None else os.path.abspath(pattern)
        # other writers add files meanwhile: each listing is read afresh (s3fs keeps them)
        options = {"use_listings_cache": False, **(storage_options or {})}
        try:
            fs, path = fsspec.core.url_to_fs(url, **options)
        except ImportError as exc:
            raise ImportError(f"files {pattern!r}: {exc}") from None
        except ValueError as exc:  # ``Protocol not known: ...``
            raise ValueError(f"files {pattern!r}: {exc}") from None
        self._fs: Any = fs
        self._path = str(path)
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._local = "file" in protocols
        parts = self._path.split("/")
        if not any(magic in self._path for magic in _MAGIC):
            raise ValueError(
                f"files {pattern!r} has no wildcard (*, ? or [...]): a pattern names the files "
                f"it watches (end a directory with /* for its files, /**/* for all below it)"
            )
        if any(part in (".", "..") for part in parts):
            raise ValueError(f"files {pattern!r}: a pattern has no . or .. part")
        first = next(i for i, part in enumerate(parts) if any(m in part for m in _MAGIC))
        self._root = "/".join(parts[:first]) or ("/" if self._path.startswith("/") else "")
        if not self._root:
            raise ValueError(
                f"files {pattern!r}: a pattern's root (its part before the first wildcard) "
                f"names a bucket or directory"
            )
        # where a listing that holds nothing is proven right: in an object store (no root
        # marker, ``bucket/key``), the bucket; elsewhere, the root directory
        self._anchor = self._root if fs.root_marker else parts[0]
        self._under = self._root if self._root.endswith("/") else f"{self._root}/"
        self._seen: dict[str, str] | None = None  # path -> version; None before a listing
        self._listing: concurrent.futures.Future[_Listing] | None = None
        self._lock = asyncio.Lock()
        self._refusals = RateLimitedLogger(_log)

    def __repr__(self) -> str:
        return f"FileWatch({self.pattern!r}, catchup={self.catchup})"

    async def poll(self) -> list[FileEvent]:
        """New or changed files since the last poll (the first: none, unless ``catchup``),
        listed in a thread, at most ``max_per_poll`` (the rest next time); raises
        :class:`FileWatchError` when the listing fails or does not end within
        :attr:`listing_timeout`."""
        async with self._lock:
            self.stats.polls += 1
            if self._listing is None:
                self._listing = self._start_listing()
            listing = self._listing
            try:  # bounded, not wait_for: before 3.12 wait_for drops a cancel that meets the end
                async with bounded(self.listing_timeout):
                    listed = await asyncio.shield(asyncio.wrap_future(listing))
            except asyncio.TimeoutError:
                self.stats.failed += 1
                raise FileWatchError(
                    self.pattern,
                    f"its listing did not end within {self.listing_timeout:g} s "
                    f"(listing_timeout; the next poll waits for it)",
                ) from None
            except FileWatchError:
                self.stats.failed += 1
                raise
            except Exception as exc:
                self.stats.failed += 1
                raise FileWatchError(self.pattern, explain(exc)) from None
            finally:
                if listing.done():
                    self._listing = None
            return self._take(listed)

    def _start_listing(self) -> concurrent.futures.Future[_Listing]:
        # a daemon thread, not the loop's executor: a store that never answers holds that
        # thread only, never the event loop nor the process's exit (asyncio.run joins its
        # executor's threads)
        done: concurrent.futures.Future[_Listing] = concurrent.futures.Future()

        def run() -> None:
            try:
                files = self._list()
            except BaseException as exc:
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    done.set_exception(exc)
            else:
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    done.set_result(files)

        threading.Thread(target=run, name="cascade-file-watch", daemon=True).start()
        return done

    def _take(self, listing: _Listing) -> list[FileEvent]:
        """The events of a listing: what is new against what was seen, the oldest
        ``max_per_poll``; what is seen becomes what was listed and given."""
        files, self.stats.refused = listing
        seen = self._seen
        self.stats.listed = len(files)
        if seen is None and not self.catchup:
            self._seen = {event.path: event.version for event, _ in files}
            self.stats.deferred = 0
            return []
        new = [
            (order, event)
            for event, order in files
            if seen is None or seen.get(event.path) != event.version
        ]
        new.sort(key=lambda item: item[0])
        given = [event for _, event in new[: self.max_per_poll]]
        # only what this listing holds is remembered (a deleted file is forgotten); a file
        # left for later is remembered at the version it had when last given, if any
        listed = {event.path for event, _ in files}
        kept = {path: version for path, version in (seen or {}).items() if path in listed}
        kept.update((event.path, event.version) for event in given)
        self._seen = kept
        self.stats.new += len(given)
        self.stats.deferred = len(new) - len(given)
        return given

    def _list(self) -> _Listing:
        """The files matching the pattern, each with its order (oldest first, then by path),
        and how many names were refused; in the listing's thread."""
        # a local listing raises what it meets (a directory it may not read); elsewhere the
        # file system's own glob decides (s3fs's takes no on_error)
        options = {"on_error": "raise"} if self._local else {}
        listing: dict[str, dict[str, Any]] = self._fs.glob(self._path, detail=True, **options)
        files: list[_File] = []
        refused: list[tuple[str, str]] = []
        for name, info in listing.items():
            if info.get("type") == "directory":
                continue
            rest = name[len(self._under) :].split("/")
            if not name.startswith(self._under) or any(p in (".", "..") for p in rest):
                refused.append((name, "not under the pattern's root"))
                continue
            file = self._local_file(name) if self._local else self._stored_file(name, info)
            if isinstance(file, str):
                refused.append((name, file))
            elif file is not None:
                files.append(file)
        # a store's glob says nothing of a bucket or directory that is not there: it lists none
        if not files and not self._fs.isdir(self._anchor):
            where = f"{self._prefix}{self._anchor}"
            why = f"{where} is no directory"
            if not self._fs.root_marker:
                why = f"bucket {where} does not exist (or cannot be listed)"
            raise FileWatchError(self.pattern, why)
        for name, why in refused[:1]:
            self._refusals.log(
                logging.WARNING,
                self.pattern,
                "files %r: %d listed name(s) refused, as %r: %s",
                self.pattern,
                len(refused),
                name,
                why,
            )
        return files, len(refused)

    def _local_file(self, name: str) -> _File | str | None:
        """A local file's event from its own ``lstat`` (the listing's ``mtime`` is a float, not
        to the nanosecond); why it is refused when it is no regular file, ``None`` when it was
        deleted since listed (the next listing forgets it)."""
        try:
            st = os.lstat(name)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return "a link (not followed)" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        modified = datetime.fromtimestamp(st.st_mtime_ns / 1e9, timezone.utc).isoformat()
        version = f"{st.st_mtime_ns}:{st.st_size}"
        event = FileEvent(self._prefix + name, version, st.st_size, modified)
        return event, (0, st.st_mtime_ns, name)

    def _stored_file(self, name: str, info: Mapping[str, Any]) -> _File | str:
        """A stored file's event from its listing's ``info``; why it is refused when it is no
        file."""
        if info.get("type", "file") != "file":
            return "not a regular file"
        size = info.get("size")
        size = size if isinstance(size, int) and not isinstance(size, bool) else None
        when = next((info[k] for k in _TIME_KEYS if info.get(k) is not None), None)
        moment = _utc(when)
        version = next((str(info[k]) for k in _VERSION_KEYS if info.get(k)), None)
        if version is None:
            version = f"{moment.timestamp() if moment else when}:{size}"
        modified = moment.isoformat() if moment else None
        event = FileEvent(self._prefix + name, version.strip('"'), size, modified)
        return event, ((0, int(moment.timestamp() * 1e9), name) if moment else (1, 0, name))


def _utc(when: object) -> datetime | None:
    """A listing's time (a datetime, epoch seconds, ISO 8601) in UTC; a naive one is UTC."""
    if isinstance(when, datetime):
        moment = when
    elif isinstance(when, (int, float)) and not isinstance(when, bool):
        try:
            return datetime.fromtimestamp(when, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(when, str):
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
