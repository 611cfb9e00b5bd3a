"""Who is publishing: the source, organisation and project ids of PROTOCOL.md."""

from __future__ import annotations

import os
import socket

from ._topics import sanitize_segment

__all__ = ["default_org_id", "default_project_id", "default_source_id"]


def default_source_id() -> str:
    """``<hostname>-<pid>``, sanitized: the id of this process when none is given."""
    return sanitize_segment(f"{socket.gethostname()}-{os.getpid()}")


def default_org_id() -> str:
    """``$CASCADE_ORG_ID``, or ``local``."""
    return os.environ.get("CASCADE_ORG_ID") or "local"


def default_project_id() -> str:
    """``$CASCADE_PROJECT_ID``, or ``default``."""
    return os.environ.get("CASCADE_PROJECT_ID") or "default"
