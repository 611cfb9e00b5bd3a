"""``cs.http.*``: one HTTP request a task, its answer a plain :class:`HttpResponse`.

The Cascade engine's meaning: a request that gets an answer succeeds whatever its status (a
404 or a 500 is a response a later task may look at); only a request that gets no answer
(refused, reset, timed out) fails the task, and so is retried like any failure. httpx makes
the request (the ``http`` extra); a client a request, as the Cascade engine opens a session
a request.
"""

from __future__ import annotations

import asyncio
import json as _json
import os
from dataclasses import dataclass, field
from typing import Any

from .._errors import CascadeRuntimeError

__all__ = ["HttpResponse", "HttpStatusError"]

DEFAULT_TIMEOUT = 300.0
"""Seconds a request may take in all, as the Cascade engine's client allowed by default."""


class HttpStatusError(CascadeRuntimeError):
    """:meth:`HttpResponse.raise_for_status` of a 4xx or 5xx answer: ``status``, ``url``."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:  # crosses from worker processes whole
        return (type(self), (self.status, self.url))


@dataclass(frozen=True)
class HttpResponse:
    """What ``cs.http.get`` and the others give: the answer whole, plain data (so it is
    kept, compared and sent to workers like any result). ``status``, ``headers`` (names
    lower-cased), ``body`` (bytes), ``url`` (the one answered, after redirects); ``text()``
    and ``json()`` decode the body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""

    @property
    def ok(self) -> bool:
        """Whether the status is below 400."""
        return self.status < 400

    def text(self, encoding: str = "utf-8") -> str:
        """The body decoded."""
        return self.body.decode(encoding)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)

    def raise_for_status(self) -> HttpResponse:
        """The response itself, or :class:`HttpStatusError` for a 4xx or 5xx status."""
        if not self.ok:
            raise HttpStatusError(self.status, self.url)
        return self

    def __repr__(self) -> str:
        return f"<HttpResponse status={self.status} url={self.url!r}>"


def _uploads(files: dict[str, Any]) -> dict[str, Any]:
    """The files of a form: a path's file read whole (under its own name), else the value."""
    uploads: dict[str, Any] = {}
    for name, value in files.items():
        if isinstance(value, (str, os.PathLike)) and os.path.isfile(value):
            with open(value, "rb") as file:
                uploads[name] = (os.path.basename(os.fspath(value)), file.read())
        else:
            uploads[name] = value
    return uploads


async def request(
    url: str,
    method: str = "GET",
    params: dict[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """Send one request with httpx and read its whole answer. ``files``: a form field to a
    path (the file is sent, under its own name) or to bytes or text (sent as they are);
    ``data`` beside ``files`` is the form's other fields."""
    import httpx

    uploads = await asyncio.to_thread(_uploads, files) if files else None
    form = data if isinstance(data, dict) else None
    content = None if isinstance(data, dict) or data is None else data
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as client:
        answer = await client.request(
            method.upper(), url, params=params, json=json, data=form, content=content, files=uploads
        )
    return HttpResponse(
        status=answer.status_code,
        headers={k.lower(): v for k, v in answer.headers.items()},
        body=answer.content,
        url=str(answer.url),
    )


async def get(
    url: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """``GET url``: its :class:`HttpResponse`, whatever its status."""
    return await request(url, "GET", params=params, headers=headers, timeout=timeout)


async def post(
    url: str,
    json: Any = None,
    data: Any = None,
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """``POST url`` with a JSON body, form ``data`` (a dict) or raw ``data``, and ``files``."""
    return await request(
        url, "POST", params, json=json, data=data, files=files, headers=headers, timeout=timeout
    )


async def put(
    url: str,
    json: Any = None,
    data: Any = None,
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """``PUT url``, its body as :func:`post`'s."""
    return await request(
        url, "PUT", json=json, data=data, files=files, headers=headers, timeout=timeout
    )


async def delete(
    url: str,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """``DELETE url``."""
    return await request(url, "DELETE", headers=headers, timeout=timeout)
