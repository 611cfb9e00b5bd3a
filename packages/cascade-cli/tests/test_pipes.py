"""A reader that goes away (`| head -1`) ends a command quietly, with exit 0."""

from __future__ import annotations

import io
import os

import pytest

from cascade.cli.plumbing._pipes import ClosedPipeGuard


class _GonePipe(io.StringIO):
    """A stream whose reader has gone, on a real descriptor (dup2 points it at /dev/null)."""

    def __init__(self) -> None:
        super().__init__()
        self.descriptor = os.open(os.devnull, os.O_WRONLY)

    def write(self, text: str) -> int:
        raise BrokenPipeError

    def fileno(self) -> int:
        return self.descriptor


def test_a_gone_reader_exits_0_outside_a_stopping_block() -> None:
    """Without anything to stop, the command exits at once with 0."""
    pipe = _GonePipe()
    with pytest.raises(SystemExit) as exited:
        ClosedPipeGuard(pipe).write("line\n")
    assert exited.value.code == 0
    os.close(pipe.descriptor)


def test_a_gone_reader_stops_the_command_inside_a_stopping_block() -> None:
    """Inside ``stopping(stop)`` the write returns and ``stop`` is called instead, so that a
    command writing from its event loop ends its connection in order (no exit from a callback)."""
    stopped: list[bool] = []
    pipe = _GonePipe()
    guard = ClosedPipeGuard(pipe)
    with guard.stopping(lambda: stopped.append(True)):
        assert guard.write("line\n") == len("line\n")
    assert stopped == [True]
    os.close(pipe.descriptor)
