"""``cs.http.*``: one HTTP request a task, its answer a plain :class:`HttpResponse`.

The Cascade engine's meaning: a request that gets an answer succeeds whatever its status (a
404 or a 500 is a response a later task may look at); only a request that gets no answer
(refused, reset, timed out) fails the task, and so is retried like any failure. httpx2 makes
the request (the ``http`` extra); a client a request, as the Cascade engine opens a session
a request.
"""

from __future__ import annotations

import asyncio
import json as _json
import os
import zlib
from dataclasses import dataclass, field
from typing import Any

from .._errors import CascadeRuntimeError
from ._bounds import MAX_HTTP_BODY_BYTES, check_bound

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
    lower-cased), ``body`` (bytes), ``url`` (the one answered, after redirects),
    ``body_file`` (the file the body was written to, with ``to_file=``; else ``None``);
    ``text()`` and ``json()`` decode the body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    url: str = ""
    body_file: str | None = None

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
    """The files of a form: a path (a ``pathlib.Path``, never a ``str``: a str is content, as
    a param's value is) read whole under its own name, else the value as it is."""
    uploads: dict[str, Any] = {}
    for name, value in files.items():
        if isinstance(value, os.PathLike):
            with open(value, "rb") as file:
                uploads[name] = (os.path.basename(os.fspath(value)), file.read())
        else:
            uploads[name] = value
    return uploads


_DECODED = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_CHUNK = 64 * 1024


class _Body:
    """An answer's body as it comes, decoded (gzip, deflate) a bounded piece at a time, so a
    few kilobytes that inflate to gigabytes are refused once past ``limit``; held, or written
    to ``to_file``."""

    def __init__(self, encoding: str, limit: int | None, to_file: Any) -> None:
        wbits = _DECODED.get(encoding.strip().lower())
        self._inflate = None if wbits is None else zlib.decompressobj(wbits)
        self._limit = limit
        self._size = 0
        self._held: list[bytes] = []
        self._to_file = to_file
        self._file = None if to_file is None else open(to_file, "wb")  # noqa: SIM115

    def _take(self, data: bytes) -> None:
        self._size += len(data)
        check_bound(self._size, self._limit, "http", "the answer's body", "max_body")
        if self._file is not None:
            self._file.write(data)
        else:
            self._held.append(data)

    def feed(self, raw: bytes) -> None:
        if self._inflate is None:
            self._take(raw)
            return
        data = raw
        while data:  # a bounded piece at a time: one raw chunk may inflate a thousandfold
            self._take(self._inflate.decompress(data, _CHUNK))
            data = self._inflate.unconsumed_tail

    def close(self) -> bytes:
        if self._inflate is not None:
            self._take(self._inflate.flush(_CHUNK))
        if self._file is not None:
            self._file.close()
        return b"".join(self._held)

    def discard(self) -> None:
        """The body left: a file begun removed, so no part of a refused body is kept."""
        if self._file is not None:
            self._file.close()
            os.remove(self._to_file)


async def request(
    url: str,
    method: str = "GET",
    params: dict[str, Any] | None = None,
    json: Any = None,
    data: Any = None,
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    max_body: int | None = MAX_HTTP_BODY_BYTES,
    to_file: str | os.PathLike[str] | None = None,
) -> HttpResponse:
    """Send one request with httpx2 and read its answer. ``files``: a form field to a path
    (a ``pathlib.Path`` or an open file: the file is sent) or to bytes or text (sent as
    they are: a ``str`` is content, never a path); ``data`` beside ``files`` is the form's
    other fields. The body, decoded, is read as it comes, up to ``max_body`` bytes
    (``None``: any); with ``to_file`` it is written there (the response's ``body`` empty,
    its ``body_file`` that path) instead of held."""
    import httpx2

    uploads = await asyncio.to_thread(_uploads, files) if files else None
    form = data if isinstance(data, dict) else None
    content = None if isinstance(data, dict) or data is None else data
    asked = {k.lower(): v for k, v in (headers or {}).items()}
    asked.setdefault("accept-encoding", ", ".join(_DECODED))  # the ones decoded here
    async with httpx2.AsyncClient(headers=asked, timeout=timeout) as client:
        sent = client.build_request(
            method.upper(), url, params=params, json=json, data=form, content=content, files=uploads
        )
        answer = await client.send(sent, stream=True)
        try:
            body = _Body(answer.headers.get("content-encoding", ""), max_body, to_file)
            try:
                async for raw in answer.aiter_raw(_CHUNK):
                    body.feed(raw)
                held = body.close()
            except BaseException:
                body.discard()
                raise
        finally:
            await answer.aclose()
    return HttpResponse(
        status=answer.status_code,
        headers={k.lower(): v for k, v in answer.headers.items()},
        body=held,
        url=str(answer.url),
        body_file=None if to_file is None else os.fspath(to_file),
    )


async def get(
    url: str,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    max_body: int | None = MAX_HTTP_BODY_BYTES,
    to_file: str | os.PathLike[str] | None = None,
) -> HttpResponse:
    """``GET url``: its :class:`HttpResponse`, whatever its status."""
    return await request(
        url,
        "GET",
        params=params,
        headers=headers,
        timeout=timeout,
        max_body=max_body,
        to_file=to_file,
    )


async def post(
    url: str,
    json: Any = None,
    data: Any = None,
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    max_body: int | None = MAX_HTTP_BODY_BYTES,
    to_file: str | os.PathLike[str] | None = None,
) -> HttpResponse:
    """``POST url`` with a JSON body, form ``data`` (a dict) or raw ``data``, and ``files``."""
    return await request(
        url,
        "POST",
        params,
        json=json,
        data=data,
        files=files,
        headers=headers,
        timeout=timeout,
        max_body=max_body,
        to_file=to_file,
    )


async def put(
    url: str,
    json: Any = None,
    data: Any = None,
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    max_body: int | None = MAX_HTTP_BODY_BYTES,
    to_file: str | os.PathLike[str] | None = None,
) -> HttpResponse:
    """``PUT url``, its body as :func:`post`'s."""
    return await request(
        url,
        "PUT",
        json=json,
        data=data,
        files=files,
        headers=headers,
        timeout=timeout,
        max_body=max_body,
        to_file=to_file,
    )


async def delete(
    url: str,
    headers: dict[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    max_body: int | None = MAX_HTTP_BODY_BYTES,
    to_file: str | os.PathLike[str] | None = None,
) -> HttpResponse:
    """``DELETE url``."""
    return await request(
        url, "DELETE", headers=headers, timeout=timeout, max_body=max_body, to_file=to_file
    )
