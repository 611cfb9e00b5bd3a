"""``shell``: a command run as a task (a string by the system's shell, a list as it is); its
output is the result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from cascade.interfaces import CascadeError

from ._task import task

__all__ = ["ShellError", "shell"]

_log = logging.getLogger("cascade.runtime.shell")
_CHUNK = 65536
_TAIL = 2048  # bytes of stderr a failure says
_LINE = 8192  # bytes of one output line logged (the rest of the line is cut)


class ShellError(CascadeError, RuntimeError):
    """A command of :func:`shell` exited non-zero: ``command`` as it was given (a string or a
    list), ``returncode``, and the tail of its stderr."""

    def __init__(self, command: str | Sequence[str], returncode: int, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        said = f"command {command!r} exited with {returncode}"
        super().__init__(f"{said}: {stderr}" if stderr else said)


class _Lines:
    """A stream's bytes as lines for the task's log (the last one when the stream ends), each
    cut at :data:`_LINE` bytes; ``level``: the log level of its lines."""

    def __init__(self, level: int) -> None:
        self.level = level
        self.partial = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        for line in lines:
            self._log(line)
        if len(self.partial) > _LINE:  # a line without end in sight: logged as it is so far
            self._log(self.partial)
            self.partial = b""

    def close(self) -> None:
        if self.partial:
            self._log(self.partial)
            self.partial = b""

    def _log(self, line: bytes) -> None:
        _log.log(self.level, "%s", line[:_LINE].decode("utf-8", "replace").rstrip("\r"))


async def _pump(
    stream: asyncio.StreamReader, lines: _Lines, kept: bytearray, keep: int | None = None
) -> None:
    """Read ``stream`` to its end: each line to the log, its bytes into ``kept`` (the last
    ``keep`` of them; ``None``: all)."""
    while chunk := await stream.read(_CHUNK):
        lines.feed(chunk)
        kept += chunk
        if keep is not None and len(kept) > keep:
            del kept[:-keep]
    lines.close()


async def _started(command: str | Sequence[str]) -> asyncio.subprocess.Process:
    """``command`` started: a string by the system's shell, a list or tuple as its program and
    arguments, each item one argument whatever it holds."""
    devnull, pipe = asyncio.subprocess.DEVNULL, asyncio.subprocess.PIPE
    if isinstance(command, str):
        return await asyncio.create_subprocess_shell(
            command, stdin=devnull, stdout=pipe, stderr=pipe
        )
    if not isinstance(command, (list, tuple)):
        raise TypeError(f"shell's command is a string or a list, not {type(command).__name__}")
    if not command:
        raise ValueError("shell's list names no program: it is empty")
    for at, item in enumerate(command):
        if not isinstance(item, str):
            raise TypeError(
                f"shell's list holds {type(item).__name__} at {at}: "
                "each item is one argument, as text"
            )
    return await asyncio.create_subprocess_exec(*command, stdin=devnull, stdout=pipe, stderr=pipe)


@task(name="shell")
async def shell(command: str | Sequence[str], check: bool = True) -> str:
    """Run ``command``; its standard output, decoded as UTF-8 and stripped, is the result.

    A string is a command line for the system's shell (``/bin/sh -c``): everything in it is
    the shell's to read, so a value from outside (a :class:`~cascade.runtime.Param`) must never
    be put into one. A list (or tuple) of strings is a program and its arguments, run with no
    shell between: each item, lazy results and ``Param`` values included, reaches the program
    as one argument, whatever it holds.

    Each line it writes is a log line of the task as it comes (stdout at ``INFO``, stderr at
    ``WARNING``, on ``cascade.runtime.shell``), forwarded as any task's logs. A command that
    exits non-zero fails the task with :class:`ShellError` (the tail of its stderr in the
    message) when ``check``; without ``check`` its output is the result all the same. A task
    cancelled or past its timeout kills the command.
    """
    process = await _started(command)
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None  # both are PIPE
    assert stderr is not None
    out = bytearray()
    err = bytearray()
    try:
        await asyncio.gather(
            _pump(stdout, _Lines(logging.INFO), out),
            _pump(stderr, _Lines(logging.WARNING), err, _TAIL),
        )
        returncode = await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(process.wait())
        raise
    if check and returncode != 0:
        tail = bytes(err).decode("utf-8", "replace").strip()
        raise ShellError(command, returncode, tail)
    return out.decode("utf-8", "replace").strip()
