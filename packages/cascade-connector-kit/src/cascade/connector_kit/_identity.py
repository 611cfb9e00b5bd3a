"""Who is publishing when nobody said: the defaults of the source, organisation and project ids
of docs/protocol.md, and of the sourced layout, that every connector and engine applies."""

from __future__ import annotations

import os
import socket

from cascade.interfaces import validate_id

__all__ = ["default_org_id", "default_project_id", "default_source_id", "default_sourced_topics"]


def default_source_id() -> str:
    """``<hostname>-<pid>``: the id of this process when none is given (topics encode it
    as every id: :func:`~cascade.interfaces.encode_level`)."""
    source = f"{socket.gethostname()}-{os.getpid()}"
    return validate_id(source, "source_id (<hostname>-<pid>)")


def _from_env(name: str, field: str, default: str) -> str:
    value = os.environ.get(name)
    return validate_id(value, field, env=name) if value else default


def default_org_id() -> str:
    """``$CASCADE_ORG_ID``, or ``local``.

    Raises :class:`InvalidIdError` naming the variable if its value is no valid id.
    """
    return _from_env("CASCADE_ORG_ID", "org_id", "local")


def default_project_id() -> str:
    """``$CASCADE_PROJECT_ID``, or ``default``.

    Raises :class:`InvalidIdError` naming the variable if its value is no valid id.
    """
    return _from_env("CASCADE_PROJECT_ID", "project_id", "default")


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def default_sourced_topics() -> bool:
    """``$CASCADE_SOURCED_TOPICS`` (``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/
    ``off``), or ``False``: whether engines publish telemetry on the sourced layout.

    Raises ``ValueError`` naming the variable for any other value.
    """
    value = os.environ.get("CASCADE_SOURCED_TOPICS", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"CASCADE_SOURCED_TOPICS must be 1 or 0 (true/false, yes/no, on/off), not {value[:30]!r}"
    )
