"""The limits every id in a Cascade topic obeys: one validation for every package."""

from __future__ import annotations

from ._errors import InvalidIdError

__all__ = ["MAX_ID_BYTES", "validate_id"]

MAX_ID_BYTES = 1024
"""The longest source, org or project id (and topic prefix), in UTF-8 bytes.

With every id at this limit the longest topic Cascade builds
(``{prefix}/telemetry/{org}/{project}/{run_id}/heartbeat``) is about 3.1 KB,
far below the 65,535 bytes MQTT allows, whatever else grows around it.
"""


def validate_id(value: str, field: str, *, env: str | None = None) -> str:
    """Return ``value`` if it can be an id in every Cascade topic and payload.

    An id must be a non-empty string, valid UTF-8 (no lone surrogates, which
    is what ``os.environ`` and ``sys.argv`` make of bytes that are not UTF-8)
    and at most :data:`MAX_ID_BYTES` long. Separators, wildcards and control
    characters are allowed: topic builders percent-encode them (``encode_level``).

    Raises :class:`InvalidIdError` (a ``ValueError``) naming ``field``, and
    the environment variable ``env`` when the value came from one.
    """
    origin = f" (from ${env})" if env else ""
    if not isinstance(value, str):
        raise InvalidIdError(
            f"{field} must be a string, not {type(value).__name__}{origin}", field, env
        )
    if not value:
        raise InvalidIdError(f"{field} must not be empty{origin}", field, env)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidIdError(
            f"{field} is not valid UTF-8: {bad!r} at position {exc.start} of {_preview(value)}"
            f"{origin}",
            field,
            env,
        ) from None
    if size > MAX_ID_BYTES:
        raise InvalidIdError(
            f"{field} is {size:,} bytes long; at most {MAX_ID_BYTES:,} are allowed: "
            f"{_preview(value)}{origin}",
            field,
            env,
        )
    return value


def _preview(value: str, limit: int = 40) -> str:
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}..."
