"""The line a run says at its start: which run it is, and where its page is."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from urllib.parse import urlsplit

from .logs._log_capture import Installed

__all__ = ["announce_run", "dashboard_address"]

_log = logging.getLogger("cascade.runtime.engine")
_ENV = "CASCADE_DASHBOARD_URL"


def dashboard_address(given: str | None) -> str | None:
    """``given``, else ``$CASCADE_DASHBOARD_URL``, else ``None``: a dashboard's address,
    ``http(s)://host[:port][/path]`` without its trailing ``/``.

    Raises ``ValueError`` naming where a value that is no such address came from.
    """
    where = "dashboard_url"
    if given is None:
        given = os.environ.get(_ENV, "").strip() or None
        where = f"${_ENV}"
    if given is None:
        return None
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{where} must be a dashboard's address, http(s)://host[:port][/path], not {given!r}"
        )
    return given.rstrip("/")


def _shown() -> bool:
    """Whether a record of the engine's logger reaches a handler someone configured. Python
    gives a record that reaches none to ``logging.lastResort``, which shows warnings only:
    there an INFO line is seen by nobody. The handler a run that forwards task logs puts on
    the root logger is the engine's own, not a configuration."""
    logger: logging.Logger | None = _log
    while logger is not None:
        if any(handler is not Installed.handler for handler in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def announce_run(run_id: str, name: str | None, dashboard: str | None, *, direct: bool) -> None:
    """Log at INFO that the run ``run_id`` started, with its page on ``dashboard``; and, for a
    run started ``direct`` ly (``Engine.run``, not a served one) where logging shows nothing,
    print it on stderr, once."""
    line = f"run {run_id}" + (f" ({name})" if name else "") + " started"
    if dashboard is not None:
        line += f": {dashboard}/runs/{run_id}"
    _log.info("%s", line)
    stderr = sys.stderr
    if direct and stderr is not None and not _shown():
        with contextlib.suppress(OSError, ValueError):  # a closed stderr costs the run nothing
            print(f"cascade: {line}", file=stderr, flush=True)
