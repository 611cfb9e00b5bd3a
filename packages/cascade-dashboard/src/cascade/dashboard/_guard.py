"""What every request to the dashboard passes first: its ``Host``, its token, its body."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cascade.control.checks import checked_name
from cascade.interfaces import CascadeError

from ._errors import SettingsError

__all__ = [
    "AccessRefused",
    "HostCheck",
    "Refused",
    "Tokens",
    "allowed_hosts",
    "bearer_matches",
    "json_body",
    "read_json",
    "refusal",
]

#: How deep a control request's JSON may nest (a constraint needs 2 levels).
MAX_DEPTH = 16
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class Refused(CascadeError):
    """A request refused with ``status`` and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def refusal(status: int, message: str, **headers: str) -> JSONResponse:
    """The one-line JSON error every refusal is."""
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


class AccessRefused(CascadeError, HTTPException):
    """A request its sender may not make (401: nobody signed in; 403: their role does not
    allow it), raised where that is found; the app answers it as every refusal
    (:func:`answer_refused`)."""


async def answer_refused(request: Request, exc: Exception) -> Response:
    """The app's handler of :class:`AccessRefused`: :func:`refusal`'s one-line JSON error."""
    assert isinstance(exc, AccessRefused)
    return refusal(exc.status_code, exc.detail, **(exc.headers or {}))


# -- Host ----------------------------------------------------------------------------------


def allowed_hosts(listen_host: str | None, extra: Iterable[str] = ()) -> frozenset[str]:
    """The ``Host`` names served: loopback ones, the listen host and ``extra`` (lower case)."""
    names = {*LOOPBACK_NAMES, *(_normal(name) for name in extra)}
    if listen_host:
        names.add(_normal(listen_host))
    return frozenset(names)


def _normal(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def _host_of(header: str) -> str | None:
    """The host part of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), or None."""
    if header.startswith("["):
        host, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return _normal(host)
    host, sep, port = header.rpartition(":")
    if not sep:
        host = header
    elif not port.isdigit() or ":" in host:
        return None
    return _normal(host) or None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostCheck:
    """Refuses requests whose ``Host`` names no address this dashboard serves (DNS rebinding).

    A page of another site that rebinds its name to this machine's address sends its own
    name as ``Host``; it gets 400 and never reads the state or takes a stream. When the
    dashboard listens on every interface (``0.0.0.0``, ``::``), an address as ``Host`` is
    accepted too: no name is involved, so nothing can be rebound.
    """

    def __init__(self, app: ASGIApp, allowed: frozenset[str], *, any_address: bool) -> None:
        self.app = app
        self.allowed = allowed
        self.any_address = any_address

    def accepts(self, header: str) -> bool:
        """Whether a request with this ``Host`` header is served."""
        host = _host_of(header)
        if host is None:
            return False
        if host in self.allowed or (_is_ip(host) and ipaddress.ip_address(host).is_loopback):
            return True
        return self.any_address and _is_ip(host)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = next((v for k, v in scope["headers"] if k == b"host"), b"")
            header = raw.decode("latin-1")
            if not self.accepts(header):
                shown = header.encode("ascii", "backslashreplace").decode()[:100]
                reason = f"Host {shown!r} is not served here (to serve it: --allowed-host NAME)"
                answer = refusal(400, reason)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- token ---------------------------------------------------------------------------------


def _bearer(scope: Scope) -> bytes | None:
    raw = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    scheme, _, given = raw.partition(b" ")
    return given.strip() if scheme.lower() == b"bearer" else None


def bearer_matches(scope: Scope, token: str | None) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>``, byte for byte in UTF-8."""
    if token is None:
        return False
    given = _bearer(scope)
    return given is not None and hmac.compare_digest(given, token.encode("utf-8"))


@dataclass(frozen=True)
class Tokens:
    """The dashboard's tokens, each with the name its holder's controls are issued by.

    ``--token NAME=SECRET`` (several allowed) names its holder; ``--token SECRET``
    (no ``=``) is issued by the dashboard's own operator name. A secret that holds
    ``=`` must be given with a name. The name is what a constraint's ``issued_by``
    then says: a claim of whoever started the dashboard, as the CLI's ``--as`` is.
    """

    secrets: tuple[tuple[bytes, str], ...]

    @classmethod
    def parse(cls, values: Iterable[str], default_name: str) -> Tokens | None:
        """The tokens of ``--token`` values (``None`` when there are none); SettingsError if
        one is malformed or two share a secret."""
        found: dict[bytes, str] = {}
        for value in values:
            name, sep, secret = value.strip().partition("=")
            if not sep:
                name, secret = default_name, name
            else:
                name = checked_name(name, "--token NAME")
                if any(char.isspace() for char in name):
                    raise SettingsError(f"--token NAME {name!r} has a space: give a name without")
            if not secret.strip() and not sep:
                continue  # an empty --token or variable: no token
            if not secret.strip():
                raise SettingsError(f"--token {name}=SECRET: the secret is empty")
            key = secret.strip().encode("utf-8")
            if key in found:
                raise SettingsError("two --token values have the same secret")
            found[key] = name
        return cls(tuple(found.items())) if found else None

    def holder(self, scope: Scope) -> str | None:
        """The name of the token the request carries as ``Authorization: Bearer``, if any.

        Every secret is compared, in constant time each, whether or not one matched.
        """
        given = _bearer(scope)
        if given is None:
            return None
        name = None
        for secret, holder in self.secrets:
            if hmac.compare_digest(given, secret):
                name = holder
        return name


# -- body ----------------------------------------------------------------------------------


async def json_body(request: Request, limit: int, not_json: str, *, optional: bool = False) -> Any:
    """The request's JSON body (:func:`read_json`), refused with 415 and ``not_json`` (what to
    send, and how) unless its content type is ``application/json``. ``optional``: a request
    with no body (no length, not chunked) gives ``None``. Raises :class:`Refused`."""
    headers = request.headers
    if (
        optional
        and headers.get("content-length", "0") == "0"
        and "transfer-encoding" not in headers
    ):
        return None
    if headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Refused(415, not_json)
    return await read_json(request, limit)


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, read chunk by chunk and never past ``limit`` bytes.

    Raises :class:`Refused`: 413 as soon as the declared length or the bytes read pass
    ``limit``; 400 for anything that is not strict JSON (NaN, Infinity), nests deeper than
    :data:`MAX_DEPTH`, or holds text that is not Unicode (a lone surrogate).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Refused(400, "the body ended early") from None
    raw = b"".join(chunks)
    if _nesting(raw) > MAX_DEPTH:
        raise Refused(400, f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not JSON") from None
    if not _all_text_encodes(body):
        raise Refused(400, "the body has text that is not valid Unicode (a lone surrogate)")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _nesting(raw: bytes) -> int:
    """How deep arrays and objects nest in ``raw`` (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def _all_text_encodes(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_all_text_encodes(k) and _all_text_encodes(v) for k, v in value.items())
    if isinstance(value, list):
        return all(map(_all_text_encodes, value))
    return True
