"""A file trigger's poller (``serve/_file_events.py``) on a directory and on in-memory file
systems: each file once per version, deleted files forgotten, catchup, a storm bounded per poll
in a stable order, bad patterns refused when made, a failing or hung listing said and tried
again, hostile names kept as data under the pattern's root."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from cascade.runtime import FileEvent, FileWatch, FileWatchError

_SECOND = 1_000_000_000
_BASE = 1_700_000_000 * _SECOND


def _write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


class _Flaky(MemoryFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """An in-memory file system of its own whose listing fails with ``failure``, or waits for
    ``gate``, while they are set; ``listings`` counts the listings begun."""

    protocol = ("flaky",)
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    failure: ClassVar[Exception | None] = None
    gate: ClassVar[threading.Event | None] = None
    listings: ClassVar[int] = 0

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return str(super()._strip_protocol(path.replace("flaky://", "memory://")))

    @classmethod
    def reset(cls) -> None:
        """List as it should again (a listing still waiting ends)."""
        if cls.gate is not None:
            cls.gate.set()
        cls.failure, cls.gate, cls.listings = None, None, 0

    def find(self, path: str, *args: Any, **kwargs: Any) -> Any:
        type(self).listings += 1
        if self.gate is not None:
            self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return super().find(path, *args, **kwargs)


@pytest.fixture
def flaky() -> Iterator[type[_Flaky]]:
    """``flaky://``, empty, listing as it should until told otherwise."""
    fsspec.register_implementation("flaky", _Flaky, clobber=True)
    _Flaky.store.clear()
    _Flaky.pseudo_dirs[:] = [""]
    _Flaky.reset()
    yield _Flaky
    _Flaky.reset()


async def test_a_new_file_is_given_once_with_its_version(tmp_path: Path) -> None:
    """The first poll only learns what is there; a file written after is given once, by its
    absolute path, ``mtime_ns:size``, size and UTC time; the same listing again gives none."""
    _write(tmp_path / "in" / "old.csv", "old")
    watch = FileWatch(str(tmp_path / "in" / "*.csv"))
    assert await watch.poll() == []
    new = _write(tmp_path / "in" / "new.csv", "hello", _BASE + 5)
    _write(tmp_path / "in" / "other.txt", "not matched")
    assert await watch.poll() == [
        FileEvent(
            str(new),
            f"{_BASE + 5}:5",
            5,
            datetime.fromtimestamp(_BASE / _SECOND, timezone.utc).isoformat(),
        )
    ]
    assert await watch.poll() == []
    assert (watch.stats.polls, watch.stats.new, watch.stats.listed) == (3, 1, 2)


async def test_a_rewritten_file_is_given_again_and_only_then(tmp_path: Path) -> None:
    """A file rewritten (a new modification time or size) is a new event; touched to the same
    time and size, it is not."""
    path = _write(tmp_path / "a.csv", "one", _BASE)
    watch = FileWatch(str(tmp_path / "*.csv"))
    await watch.poll()
    _write(path, "two", _BASE)
    assert await watch.poll() == []
    _write(path, "three", _BASE)
    (bigger,) = await watch.poll()
    assert bigger.version == f"{_BASE}:5"
    _write(path, "three", _BASE + 1)
    (later,) = await watch.poll()
    assert later.version == f"{_BASE + 1}:5"
    assert await watch.poll() == []


async def test_a_deleted_file_is_forgotten(tmp_path: Path) -> None:
    """What a listing no longer holds is not remembered: a file deleted, then written back
    exactly as it was (same time, same size), is new again."""
    path = _write(tmp_path / "a.csv", "same", _BASE)
    watch = FileWatch(str(tmp_path / "*.csv"))
    await watch.poll()
    path.unlink()
    assert await watch.poll() == []
    assert watch.stats.listed == 0
    _write(path, "same", _BASE)
    (again,) = await watch.poll()
    assert (again.path, again.version) == (str(path), f"{_BASE}:4")


async def test_catchup_gives_the_files_already_there_oldest_first(tmp_path: Path) -> None:
    """With ``catchup``, the first poll gives the files present, oldest first."""
    _write(tmp_path / "b.csv", "b", _BASE + 1)
    _write(tmp_path / "a.csv", "a", _BASE + 2)
    _write(tmp_path / "c.csv", "c", _BASE)
    watch = FileWatch(str(tmp_path / "*.csv"), catchup=True)
    events = await watch.poll()
    assert [Path(e.path).name for e in events] == ["c.csv", "b.csv", "a.csv"]
    assert await watch.poll() == []


async def test_a_storm_is_given_max_per_poll_at_a_time_oldest_first(tmp_path: Path) -> None:
    """25 new files with ``max_per_poll=10`` are given 10, 10, 5, oldest first then by path,
    the rest counted as deferred; a file newer than those left waits behind them."""
    watch = FileWatch(str(tmp_path / "**" / "*.csv"), max_per_poll=10)
    await watch.poll()
    for i in range(25):  # three files a second: the path breaks the ties
        _write(tmp_path / f"d{i % 2}" / f"f{24 - i:02}.csv", "x", _BASE + (i // 3) * _SECOND)
    expected = sorted(
        (str(tmp_path / f"d{i % 2}" / f"f{24 - i:02}.csv") for i in range(25)),
        key=lambda p: (os.stat(p).st_mtime_ns, p),
    )
    first = await watch.poll()
    assert (len(first), watch.stats.deferred) == (10, 15)
    _write(tmp_path / "late.csv", "x", _BASE + 100 * _SECOND)
    second = await watch.poll()
    assert (len(second), watch.stats.deferred) == (10, 6)
    third = await watch.poll()
    assert [e.path for e in first + second + third] == [*expected, str(tmp_path / "late.csv")]
    assert (watch.stats.new, watch.stats.deferred) == (26, 0)
    assert await watch.poll() == []


async def test_a_file_changed_while_deferred_is_given_once_as_it_is_then(
    tmp_path: Path,
) -> None:
    """A file left for a later poll and rewritten meanwhile is given once, at its version
    when it is given."""
    _write(tmp_path / "a.csv", "a", _BASE)
    late = _write(tmp_path / "b.csv", "b", _BASE + 1)
    watch = FileWatch(str(tmp_path / "*.csv"), catchup=True, max_per_poll=1)
    assert [Path(e.path).name for e in await watch.poll()] == ["a.csv"]
    _write(late, "bb", _BASE + 2)
    assert [(Path(e.path).name, e.size) for e in await watch.poll()] == [("b.csv", 2)]
    assert await watch.poll() == []


@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        ("nosuchprotocol://bucket/*.csv", "Protocol not known"),
        ("/data/in/a.csv", "has no wildcard"),
        ("/data/in", "has no wildcard"),
        ("memory://data/../etc/*", "no . or .. part"),
        ("/data/in/\n*.csv", "control characters"),
        ("  ", "control characters"),
    ],
)
def test_a_bad_pattern_is_refused_when_made(pattern: str, said: str) -> None:
    """A pattern that is no glob, or whose protocol no file system knows, is a ValueError
    that names it."""
    with pytest.raises(ValueError, match=said) as raised:
        FileWatch(pattern)
    assert repr(pattern) in str(raised.value)


def test_a_protocol_whose_package_is_missing_says_what_to_install() -> None:
    """A protocol fsspec knows whose package is not installed is an ImportError naming the
    pattern and the package."""
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed")
    with pytest.raises(ImportError, match=r"files 'gs://bucket/\*\.csv': .*gcsfs"):
        FileWatch("gs://bucket/*.csv")


@pytest.mark.parametrize("max_per_poll", [0, -1])
def test_max_per_poll_is_at_least_one(tmp_path: Path, max_per_poll: int) -> None:
    """``max_per_poll`` below 1 is refused."""
    with pytest.raises(ValueError, match="max_per_poll"):
        FileWatch(str(tmp_path / "*"), max_per_poll=max_per_poll)


async def test_a_relative_pattern_is_made_absolute_and_normal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative pattern, even through ``..``, watches its directory and gives absolute
    paths."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other").mkdir()
    watch = FileWatch("other/../in/*.csv", catchup=True)
    _write(tmp_path / "in" / "a.csv", "a")
    assert [e.path for e in await watch.poll()] == [str(tmp_path / "in" / "a.csv")]


async def test_a_missing_directory_fails_each_poll_until_it_is_there(tmp_path: Path) -> None:
    """A listing of a directory that is not there raises FileWatchError naming the pattern
    and why, counted; the next poll lists again, and the first listing that succeeds is the
    one that learns what is there."""
    pattern = str(tmp_path / "in" / "*.csv")
    watch = FileWatch(pattern)
    with pytest.raises(FileWatchError, match="FileNotFoundError") as raised:
        await watch.poll()
    assert (raised.value.pattern, watch.stats.failed) == (pattern, 1)
    assert repr(pattern) in str(raised.value)
    _write(tmp_path / "in" / "there.csv", "x")
    assert await watch.poll() == []
    _write(tmp_path / "in" / "new.csv", "x")
    assert [Path(e.path).name for e in await watch.poll()] == ["new.csv"]
    assert (watch.stats.polls, watch.stats.failed) == (3, 1)


async def test_a_root_that_is_a_file_fails(tmp_path: Path) -> None:
    """A pattern whose root is a file, not a directory, fails its listing."""
    _write(tmp_path / "in", "a file")
    watch = FileWatch(str(tmp_path / "in" / "*.csv"))
    with pytest.raises(FileWatchError, match="is no directory"):
        await watch.poll()


async def test_a_failing_listing_is_said_and_forgets_nothing(flaky: type[_Flaky]) -> None:
    """A listing refused (a permission) raises FileWatchError with its reason; what was seen
    before is still seen after (a failure is no empty listing): nothing is given twice."""
    fs = fsspec.filesystem("flaky")
    fs.pipe("/in/a.csv", b"a")
    watch = FileWatch("flaky://in/*.csv")
    assert await watch.poll() == []
    flaky.failure = PermissionError("Access Denied")
    with pytest.raises(FileWatchError, match=r"PermissionError: Access Denied") as raised:
        await watch.poll()
    assert raised.value.reason == "PermissionError: Access Denied"
    flaky.failure = None
    fs.pipe("/in/b.csv", b"b")
    assert [e.path for e in await watch.poll()] == ["flaky:///in/b.csv"]
    assert (watch.stats.failed, watch.stats.new) == (1, 1)


async def test_a_hung_listing_fails_the_poll_and_is_not_begun_twice(
    flaky: type[_Flaky],
) -> None:
    """A listing that does not end fails its poll after ``listing_timeout`` (the loop runs
    meanwhile: it is in a thread); the next poll waits for the same listing rather than
    begin another, and gives what it found once it ends."""
    watch = FileWatch("flaky://in/*.csv", catchup=True)
    fsspec.filesystem("flaky").pipe("/in/a.csv", b"a")
    flaky.gate = threading.Event()
    watch.listing_timeout = 0.01
    for _ in range(2):
        with pytest.raises(FileWatchError, match=r"did not end within 0.01 s"):
            await watch.poll()
    assert (flaky.listings, watch.stats.failed) == (1, 2)
    flaky.gate.set()
    watch.listing_timeout = 60
    assert [e.path for e in await watch.poll()] == ["flaky:///in/a.csv"]
    assert flaky.listings == 1


async def test_a_poll_waits_for_the_one_before_it(flaky: type[_Flaky]) -> None:
    """Two polls at once list once each, one after the other: a file is given by one only."""
    watch = FileWatch("flaky://in/*.csv", catchup=True)
    fsspec.filesystem("flaky").pipe("/in/a.csv", b"a")
    first, second = await asyncio.gather(watch.poll(), watch.poll())
    assert [len(first), len(second)] == [1, 0]
    assert flaky.listings == 2


async def test_hostile_names_are_data(tmp_path: Path) -> None:
    """Names with newlines, quotes and shell syntax are given as they are, and nothing runs
    them."""
    names = ["a\nb.csv", "$(touch pwned).csv", "; rm -rf x; .csv", "'\"`.csv", "-rf.csv"]
    watch = FileWatch(str(tmp_path / "*.csv"), catchup=True)
    for name in names:
        _write(tmp_path / name, "x")
    events = await watch.poll()
    assert sorted(Path(e.path).name for e in events) == sorted(names)
    assert sorted(os.listdir(tmp_path)) == sorted(names)


async def test_links_and_other_files_are_refused_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A link (even to a file under the root) and a FIFO are refused, counted and logged
    with their names made inert; a directory matching the glob is no file and is skipped."""
    _write(tmp_path / "in" / "a.csv", "a")
    (tmp_path / "in" / "outside.csv").symlink_to("/etc/hostname")
    (tmp_path / "in" / "inside.csv").symlink_to(tmp_path / "in" / "a.csv")
    os.mkfifo(tmp_path / "in" / "pipe\n.csv")
    (tmp_path / "in" / "dir.csv").mkdir()
    watch = FileWatch(str(tmp_path / "in" / "*.csv"), catchup=True)
    with caplog.at_level(logging.WARNING, logger="cascade.runtime.serve"):
        events = await watch.poll()
    assert [Path(e.path).name for e in events] == ["a.csv"]
    assert (watch.stats.listed, watch.stats.refused) == (1, 3)
    (record,) = caplog.records
    assert "3 listed name(s) refused" in record.getMessage()
    assert "\n" not in record.getMessage()


async def test_a_name_that_climbs_out_of_the_root_is_refused(flaky: type[_Flaky]) -> None:
    """A store's key with a ``..`` part (S3 keeps ``in/../x.csv`` as it is) is refused, not
    given as a path under the root."""
    fs = fsspec.filesystem("flaky")
    fs.pipe("/in/../etc/x.csv", b"x")
    fs.pipe("/in/./y.csv", b"y")
    fs.pipe("/in/sub/z.csv", b"z")
    watch = FileWatch("flaky://in/**/*.csv", catchup=True)
    assert [e.path for e in await watch.poll()] == ["flaky:///in/sub/z.csv"]
    assert watch.stats.refused == 2


async def test_a_store_without_times_or_versions_still_sees_rewrites(
    flaky: type[_Flaky],
) -> None:
    """In a store whose listing has no version, a file's version is its time and size (the
    memory store's ``created``): rewritten, it is new."""
    fs = fsspec.filesystem("flaky")
    watch = FileWatch("flaky://in/*.csv")
    fs.pipe("/in/a.csv", b"a")
    await watch.poll()
    fs.pipe("/in/a.csv", b"a2")
    (event,) = await watch.poll()
    assert (event.size, event.version.endswith(":2")) == (2, True)
    assert event.modified is not None
    assert event.modified.endswith("+00:00")
