"""Children that take Ctrl-C as a terminal gives it, wherever the tests run."""

from __future__ import annotations

import signal

__all__ = ["sigint_default"]


def sigint_default() -> None:
    """A ``preexec_fn`` that gives the child SIGINT's default disposition.

    A non-interactive shell starts its background jobs with SIGINT ignored, and
    children inherit that; Python then installs no ``KeyboardInterrupt`` handler,
    so a test that sends SIGINT (the user's Ctrl-C) to a command would wait on a
    child that never hears it. A terminal's foreground job has the default.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
