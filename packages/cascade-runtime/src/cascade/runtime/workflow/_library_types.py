"""The shipped providers as type checkers see ``cs.format``, ``cs.read.text``, ...; at run
time ``cascade.runtime`` finds them through their entry points (this module is never
imported then)."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from ._http import HttpResponse
from ._task import LazyResult, Task

format: Task[..., str]
dict: Task[..., Any]
wait: Task[..., None]
lookup: Task[..., Any]
load_yaml: Task[..., Any]
template: Task[..., str]
subflow: Task[..., Any]
recv: Task[..., Any]
sql: Callable[..., LazyResult[list[builtins.dict[str, Any]]]]


class _Read:
    text: Task[..., str]
    bytes: Task[..., bytes]


class _Write:
    text: Task[..., None]
    bytes: Task[..., None]


class _Fs:
    exists: Task[..., bool]


class _Local:
    read_text: Task[..., str]
    read_bytes: Task[..., bytes]
    write_text: Task[..., None]
    write_bytes: Task[..., None]
    exists: Task[..., bool]


class _S3:
    read_text: Task[..., str]
    read_bytes: Task[..., bytes]
    write_text: Task[..., None]
    write_bytes: Task[..., None]


class _Stdout:
    write: Task[..., None]


class _Stdin:
    read_line: Task[..., str]


class _Io:
    local: _Local
    s3: _S3
    stdout: _Stdout
    stdin: _Stdin


class _Http:
    get: Task[..., HttpResponse]
    post: Task[..., HttpResponse]
    put: Task[..., HttpResponse]
    delete: Task[..., HttpResponse]
    request: Task[..., HttpResponse]


http: _Http
read: _Read
write: _Write
fs: _Fs
io: _Io
