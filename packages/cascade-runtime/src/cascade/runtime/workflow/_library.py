"""The providers cascade-runtime ships (``cs.format``, ``cs.read.text``, ...), with the
Cascade engine's names and meanings, found through its own ``cascade.providers`` entry
points like any other package's.

Each is a :func:`task` named as its provider (``cs.read.text`` is the task ``read.text``),
so it is shown, steered (``task:read.text``), retried, held and kept like any other task.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Callable
from typing import Any

from .._errors import CascadeRuntimeError
from . import _http
from ._bounds import (
    MAX_READ_BYTES,
    MAX_RENDERED_CHARS,
    MAX_YAML_BYTES,
    MAX_YAML_NODES,
    read_within,
)
from ._formatting import render_format, render_template
from ._from_params import Guard, GuardedTask, under_root
from ._task import Task, TaskOptions, task
from ._yaml import load_yaml

__all__ = ["ExtraMissing"]


class ExtraMissing(CascadeRuntimeError, ImportError):
    """A provider needs a package an extra of cascade-runtime installs."""

    def __init__(self, provider: str, module: str, extra: str) -> None:
        super().__init__(
            f"cs.{provider} needs {module}: pip install 'cascade-runtime[{extra}]'",
            name=module,
        )


# --- the functions, each made a task once per provider name below ---


def _format(
    template: str, *args: Any, max_length: int | None = MAX_RENDERED_CHARS, **kwargs: Any
) -> str:
    """``template.format(*args, **kwargs)``: ``cs.format("Hello, {name}!", name=who)``, with
    plain fields only (no ``{0.attr}`` nor ``{0[key]}``: the format string may be a param's)
    and at most ``max_length`` characters rendered (``None``: any)."""
    return render_format(template, args, kwargs, max_length)


def _dict(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments as one dict (their lazy results resolved)."""
    return kwargs


async def _wait(delay: float) -> None:
    """Wait ``delay`` seconds without holding a thread."""
    await asyncio.sleep(float(delay))


def _lookup(source: Any, key: str) -> Any:
    """``source`` followed along the dotted ``key``: a dict's key, or a list's index
    (``"servers.0.host"``); a missing step is a ``KeyError``, a step into a value that
    holds nothing a ``TypeError``, each naming the step and the key."""
    current = source
    for part in key.split("."):
        if isinstance(current, dict):
            if part not in current:
                raise KeyError(f"no {part!r} in {key!r}")
            current = current[part]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                raise KeyError(f"{part!r} is no index of the list at {key!r}") from None
        else:
            raise TypeError(f"{part!r} of {key!r} is asked of a {type(current).__name__}")
    return current


def _load_yaml(
    path: str,
    *,
    root: str | os.PathLike[str] | None = None,
    max_bytes: int | None = MAX_YAML_BYTES,
    max_nodes: int | None = MAX_YAML_NODES,
) -> Any:
    """The YAML document at ``path``, parsed safely (PyYAML's ``safe_load``), of at most
    ``max_bytes`` bytes and ``max_nodes`` nodes (each alias counted as what it stands for);
    with ``root``, ``path`` is under it (:func:`~._from_params.under_root`)."""
    return load_yaml(under_root(path, root, "load_yaml"), max_bytes, max_nodes)


def _template(
    template_string: str,
    context: dict[str, Any] | None = None,
    *,
    max_length: int | None = MAX_RENDERED_CHARS,
    **kwargs: Any,
) -> str:
    """The Jinja2 template rendered with ``context`` and the keyword arguments (which win), in
    Jinja2's sandbox: a template that comes from a param or a file cannot reach Python's
    internals through its values, nor render more than ``max_length`` characters."""
    return render_template(template_string, {**(context or {}), **kwargs}, max_length)


_Root = str | os.PathLike[str] | None


def _read_file(path: str, root: _Root, max_bytes: int | None, provider: str) -> bytes:
    with open(under_root(path, root, provider), "rb") as file:
        return read_within(file.read, max_bytes, provider, "the file's size")


def _read_text(
    path: str,
    encoding: str = "utf-8",
    *,
    root: _Root = None,
    max_bytes: int | None = MAX_READ_BYTES,
) -> str:
    """The text of the file at ``path`` (with ``root``: under it), of at most ``max_bytes``
    bytes (no more is read), its newlines read as ``open`` reads them in text mode."""
    data = _read_file(path, root, max_bytes, "read.text")
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()


def _read_bytes(path: str, *, root: _Root = None, max_bytes: int | None = MAX_READ_BYTES) -> bytes:
    """The bytes of the file at ``path`` (with ``root``: under it), at most ``max_bytes``
    (no more is read)."""
    return _read_file(path, root, max_bytes, "read.bytes")


def _write_text(path: str, content: str, encoding: str = "utf-8", *, root: _Root = None) -> None:
    """Write ``content`` to the file at ``path`` (replacing it; with ``root``: under it)."""
    with open(under_root(path, root, "write.text"), "w", encoding=encoding) as file:
        file.write(content)


def _write_bytes(path: str, content: bytes, *, root: _Root = None) -> None:
    """Write ``content`` to the file at ``path`` (replacing it; with ``root``: under it)."""
    with open(under_root(path, root, "write.bytes"), "wb") as file:
        file.write(content)


def _exists(path: str, *, root: _Root = None) -> bool:
    """Whether ``path`` exists (with ``root``: under it)."""
    return os.path.exists(under_root(path, root, "fs.exists"))


def _s3(storage_options: dict[str, Any] | None) -> Any:
    import fsspec

    return fsspec.filesystem("s3", **(storage_options or {}))


def _s3_read(
    bucket: str,
    key: str,
    storage_options: dict[str, Any] | None,
    max_bytes: int | None,
    provider: str,
) -> bytes:
    fs, path = _s3(storage_options), f"{bucket}/{key}"

    def read(size: int) -> bytes:  # a ranged GET: S3 sends no more than it asks
        data: bytes = fs.cat_file(path) if size < 0 else fs.cat_file(path, start=0, end=size)
        return data

    return read_within(read, max_bytes, provider, "the object's size")


def _s3_read_bytes(
    bucket: str,
    key: str,
    storage_options: dict[str, Any] | None = None,
    *,
    max_bytes: int | None = MAX_READ_BYTES,
) -> bytes:
    """The bytes of the object ``key`` in ``bucket``, through fsspec's ``s3`` (s3fs: the
    credentials, region and endpoint of the environment, or ``storage_options``), at most
    ``max_bytes`` (no more is read)."""
    return _s3_read(bucket, key, storage_options, max_bytes, "io.s3.read_bytes")


def _s3_read_text(
    bucket: str,
    key: str,
    encoding: str = "utf-8",
    storage_options: dict[str, Any] | None = None,
    *,
    max_bytes: int | None = MAX_READ_BYTES,
) -> str:
    """The text of the object ``key`` in ``bucket``, of at most ``max_bytes`` bytes."""
    return _s3_read(bucket, key, storage_options, max_bytes, "io.s3.read_text").decode(encoding)


def _s3_write_bytes(
    bucket: str, key: str, content: bytes, storage_options: dict[str, Any] | None = None
) -> None:
    """Put ``content`` as the object ``key`` in ``bucket`` (replacing it)."""
    _s3(storage_options).pipe_file(f"{bucket}/{key}", content)


def _s3_write_text(
    bucket: str,
    key: str,
    content: str,
    encoding: str = "utf-8",
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Put ``content`` encoded as the object ``key`` in ``bucket`` (replacing it)."""
    _s3_write_bytes(bucket, key, content.encode(encoding), storage_options)


def _sql_rows(conn: Any, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    from sqlalchemy import text

    result = conn.execute(text(query), params)
    rows = [dict(row) for row in result.mappings()] if result.returns_rows else []
    if hasattr(conn, "commit"):
        conn.commit()
    return rows


def _sql_query(
    query: str,
    params: dict[str, Any] | None = None,
    conn: Any = None,
    url: str | None = None,
) -> list[dict[str, Any]]:
    """Run ``query`` (SQLAlchemy's ``text``, ``:name`` placeholders filled from ``params``)
    on ``conn``, an SQLAlchemy engine (a connection taken from it a query) or connection,
    or on an engine made from ``url`` for this query alone; committed, its rows as dicts."""
    if url is not None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as connection:
                return _sql_rows(connection, query, params or {})
        finally:
            engine.dispose()
    if hasattr(conn, "connect"):
        with conn.connect() as connection:
            return _sql_rows(connection, query, params or {})
    if conn is None:
        raise TypeError("sql needs a connection: an SQLAlchemy engine or connection, or a URL")
    return _sql_rows(conn, query, params or {})


def _sql(query: Any, db: Any, params: Any = None) -> Any:
    """``cs.sql(query, db, params=None)``: the task ``sql`` running ``query`` on ``db``: the
    name of a resource whose value is an SQLAlchemy engine or connection (the Cascade
    engine's meaning), a database URL (``"sqlite:///app.db"``: an engine for this query
    alone), or an engine or connection (or a lazy result of one) itself."""
    sql_task = SqlProvider.task()
    if isinstance(db, str) and "://" in db:
        return sql_task(query, params, url=db)
    if isinstance(db, str):
        from ._resource import inject

        return sql_task(query, params, conn=inject(db))
    return sql_task(query, params, conn=db)


def _stdout_write(text: str) -> None:
    """Print ``text`` (and a newline) to standard output."""
    print(text, file=sys.stdout, flush=True)


def _stdin_read_line(*_after: Any) -> str:
    """One line of standard input, stripped; arguments only order it after their tasks."""
    return sys.stdin.readline().strip()


# --- the providers: one class per entry point, as the Cascade engine has them ---


class _Provider:
    """A provider of one of the functions above as the task ``name``; ``needs``: the module
    it imports and the extra that installs it, checked when its factory is made."""

    name: str
    function: Callable[..., Any]
    needs: tuple[str, str] | None = None
    paths: tuple[str, ...] = ()  # its arguments that are paths (from a param: under a root)
    in_code: tuple[str, ...] = ()  # its options no param may give (a root, a bound)

    def create_factory(self) -> Task[Any, Any]:
        if self.needs is not None:
            module, extra = self.needs
            try:
                __import__(module)
            except ImportError:
                raise ExtraMissing(self.name, module, extra) from None
        made = _made.get(self.name)
        if made is None:
            if self.paths or self.in_code:
                guard = Guard(self.name, self.paths, self.in_code)
                made = GuardedTask(self.function, guard, TaskOptions(name=self.name))
            else:
                made = task(name=self.name)(self.function)
            _made[self.name] = made
        return made


_made: dict[str, Task[Any, Any]] = {}  # one task per provider name


class ShellProvider:
    """``cs.shell``: :func:`~cascade.runtime.shell` (a public name too)."""

    name = "shell"

    def create_factory(self) -> Task[Any, Any]:
        from ._shell import shell

        return shell


class FormatProvider(_Provider):
    name = "format"
    function = staticmethod(_format)
    in_code = ("max_length",)


class DictProvider(_Provider):
    name = "dict"
    function = staticmethod(_dict)


class TimeWaitProvider(_Provider):
    name = "wait"
    function = staticmethod(_wait)


class LookupProvider(_Provider):
    name = "lookup"
    function = staticmethod(_lookup)


class YamlLoaderProvider(_Provider):
    name = "load_yaml"
    function = staticmethod(_load_yaml)
    needs = ("yaml", "yaml")
    paths = ("path",)
    in_code = ("root", "max_bytes", "max_nodes")


class TemplateProvider(_Provider):
    name = "template"
    function = staticmethod(_template)
    needs = ("jinja2", "template")
    in_code = ("max_length",)


class ReadTextProvider(_Provider):
    name = "read.text"
    function = staticmethod(_read_text)
    paths = ("path",)
    in_code = ("root", "max_bytes")


class ReadBytesProvider(_Provider):
    name = "read.bytes"
    function = staticmethod(_read_bytes)
    paths = ("path",)
    in_code = ("root", "max_bytes")


class WriteTextProvider(_Provider):
    name = "write.text"
    function = staticmethod(_write_text)
    paths = ("path",)
    in_code = ("root",)


class WriteBytesProvider(_Provider):
    name = "write.bytes"
    function = staticmethod(_write_bytes)
    paths = ("path",)
    in_code = ("root",)


class FsExistsProvider(_Provider):
    name = "fs.exists"
    function = staticmethod(_exists)
    paths = ("path",)
    in_code = ("root",)


class IoLocalReadTextProvider(ReadTextProvider):
    name = "io.local.read_text"


class IoLocalReadBytesProvider(ReadBytesProvider):
    name = "io.local.read_bytes"


class IoLocalWriteTextProvider(WriteTextProvider):
    name = "io.local.write_text"


class IoLocalWriteBytesProvider(WriteBytesProvider):
    name = "io.local.write_bytes"


class IoLocalExistsProvider(FsExistsProvider):
    name = "io.local.exists"


class S3ReadTextProvider(_Provider):
    name = "io.s3.read_text"
    function = staticmethod(_s3_read_text)
    needs = ("s3fs", "s3")
    in_code = ("max_bytes",)


class S3ReadBytesProvider(_Provider):
    name = "io.s3.read_bytes"
    function = staticmethod(_s3_read_bytes)
    needs = ("s3fs", "s3")
    in_code = ("max_bytes",)


class S3WriteTextProvider(_Provider):
    name = "io.s3.write_text"
    function = staticmethod(_s3_write_text)
    needs = ("s3fs", "s3")


class S3WriteBytesProvider(_Provider):
    name = "io.s3.write_bytes"
    function = staticmethod(_s3_write_bytes)
    needs = ("s3fs", "s3")


class SqlProvider(_Provider):
    """``cs.sql``: a function that makes the task ``sql`` (as the Cascade engine's, which
    turns the resource's name into an inject)."""

    name = "sql"
    function = staticmethod(_sql_query)
    needs = ("sqlalchemy", "sql")

    @classmethod
    def task(cls) -> Task[Any, Any]:
        """The task ``sql``, made once."""
        return _Provider.create_factory(cls())

    def create_factory(self) -> Callable[..., Any]:  # type: ignore[override]
        self.task()
        return _sql


class StdOutWriteProvider(_Provider):
    name = "io.stdout.write"
    function = staticmethod(_stdout_write)


class StdInReadLineProvider(_Provider):
    name = "io.stdin.read_line"
    function = staticmethod(_stdin_read_line)


class HttpGetProvider(_Provider):
    name = "http.get"
    function = staticmethod(_http.get)
    needs = ("httpx2", "http")
    in_code = ("to_file", "max_body")


class HttpPostProvider(_Provider):
    name = "http.post"
    function = staticmethod(_http.post)
    needs = ("httpx2", "http")
    in_code = ("to_file", "max_body")


class HttpPutProvider(_Provider):
    name = "http.put"
    function = staticmethod(_http.put)
    needs = ("httpx2", "http")
    in_code = ("to_file", "max_body")


class HttpDeleteProvider(_Provider):
    name = "http.delete"
    function = staticmethod(_http.delete)
    needs = ("httpx2", "http")
    in_code = ("to_file", "max_body")


class HttpRequestProvider(_Provider):
    name = "http.request"
    function = staticmethod(_http.request)
    needs = ("httpx2", "http")
    in_code = ("to_file", "max_body")
