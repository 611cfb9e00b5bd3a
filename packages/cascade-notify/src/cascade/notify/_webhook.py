"""``Webhook``: posting JSON to one URL, retried with backoff, bounded in time, never printing
the URL (it often carries a token: Slack's, Discord's)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from ._destinations import DestinationRefused, Destinations

__all__ = ["DEFAULT_ATTEMPTS", "DEFAULT_TIMEOUT", "MAX_ANSWER", "Posted", "Webhook", "redact"]

DEFAULT_TIMEOUT = 10.0
"""Seconds one attempt may take, all of it (connecting, sending, the answer)."""

DEFAULT_ATTEMPTS = 5
"""Attempts of one post: the first and four retries (1, 2, 4, 8 s apart, each ±25 %)."""

_log = logging.getLogger("cascade.notify")

MAX_ANSWER = 64 * 1024
"""Bytes of a receiver's answer read at most; the rest is never read, its connection closed."""

_FIRST_DELAY = 1.0
_MAX_DELAY = 30.0


def redact(url: str) -> str:
    """``url`` as it may be shown: its scheme and host, the rest hidden
    (``https://hooks.slack.com/…``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a webhook URL)"
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or '?'}://{shown}{port}/…"


@dataclass(frozen=True)
class Posted:
    """How one post ended: ``ok``, after how many ``attempts``, the last HTTP ``status`` (``None``:
    no answer) and, when not ok, why (the URL never in it)."""

    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


class Webhook:
    """Posts JSON to ``url``: each attempt bounded by ``timeout`` seconds whatever the receiver
    does (one that accepts and never answers included), retried on no answer, a 5xx or a 429
    (its ``Retry-After`` taken up to 30 s) up to ``attempts`` times with exponential backoff;
    a 4xx other than 429 is final. ``destinations``: where it may post (global addresses only,
    by default): a URL whose host is refused by name or address raises ``DestinationRefused``
    here, and a name found at post time to resolve to a refused address is a final attempt
    (``refused``), logged. The environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``, ...) are
    used as httpx uses them, the destination checked before a proxy is asked.
    ``on_attempt(outcome)`` is told each attempt's outcome (``ok``, ``http_5xx``,
    ``http_4xx``, ``timeout``, ``unreachable``, ``refused``). ``transport``: an
    ``httpx2`` transport instead of ``destinations``' (tests inject one, as httpx's
    ``MockTransport``; no proxy is used then)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        attempts: int = DEFAULT_ATTEMPTS,
        on_attempt: Callable[[str], None] | None = None,
        destinations: Destinations | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"a webhook is an http(s) URL, not {redact(url)}")
        self.destinations = destinations or Destinations()
        refused = self.destinations.refusal(urlsplit(url).hostname or "")
        if refused is not None:
            raise DestinationRefused(f"webhook {redact(url)}: {refused}")
        self.url = url
        self.shown = redact(url)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.on_attempt = on_attempt
        self._sleep = sleep
        # a transport given to a client makes httpx ignore the environment's proxies: they
        # are mounted again, checking destinations as the direct transport does
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeout),
            transport=transport or self.destinations.transport(),
            mounts=None if transport is not None else self.destinations.mounts(),
            follow_redirects=False,
        )

    @property
    def longest(self) -> float:
        """Seconds a post can take at most: every attempt's timeout, and the longest pause
        between two (a claim's lease must outlast it)."""
        return self.attempts * self.timeout + (self.attempts - 1) * _MAX_DELAY

    async def post(self, payload: dict[str, Any]) -> Posted:
        """Post ``payload`` until it is taken (2xx) or the attempts are used up."""
        delay, status, error = _FIRST_DELAY, None, ""
        for attempt in range(1, self.attempts + 1):
            wait: float | None = None
            try:
                response = await asyncio.wait_for(self._attempt(payload), self.timeout)
            except (asyncio.TimeoutError, httpx2.TimeoutException):
                outcome, status, error = "timeout", None, f"no answer within {self.timeout:g} s"
            except DestinationRefused as exc:
                error = f"webhook {self.shown}: {exc}"
                _log.warning("cascade notify: %s", error)
                self._told("refused")
                return Posted(False, attempt, None, error)
            except httpx2.HTTPError as exc:
                outcome, status = "unreachable", None
                error = f"{type(exc).__name__}: {self._hidden(str(exc))}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._told("ok")
                    return Posted(True, attempt, status)
                error = f"answered {status} {response.reason_phrase}".rstrip()
                if status != 429 and status < 500:
                    self._told("http_4xx")
                    return Posted(False, attempt, status, error)
                outcome = "http_5xx" if status >= 500 else "http_4xx"
                wait = _retry_after(response.headers.get("retry-after"))
            self._told(outcome)
            if attempt < self.attempts:
                pause = wait if wait is not None else delay * random.uniform(0.75, 1.25)
                await self._sleep(min(pause, _MAX_DELAY))
                delay = min(delay * 2, _MAX_DELAY)
        return Posted(False, self.attempts, status, error)

    async def _attempt(self, payload: dict[str, Any]) -> httpx2.Response:
        """One POST, its answer's body read to :data:`MAX_ANSWER` bytes at most and dropped (a
        receiver costs an event its attempts, never the notifier's memory)."""
        async with self._client.stream("POST", self.url, json=payload) as response:
            if response.is_stream_consumed:  # an answer made in memory (a test's transport)
                return response
            read = 0
            # raw: a compressed answer is never inflated
            async with aclosing(response.aiter_raw()) as body:
                async for chunk in body:
                    read += len(chunk)
                    if read >= MAX_ANSWER:
                        break
            return response

    async def close(self) -> None:
        """Close the connections kept open."""
        await self._client.aclose()

    def _told(self, outcome: str) -> None:
        if self.on_attempt is not None:
            self.on_attempt(outcome)

    def _hidden(self, text: str) -> str:
        """``text`` with the URL (and its path, where a library printed only that) hidden."""
        path = urlsplit(self.url).path
        text = text.replace(self.url, self.shown)
        return text.replace(path, "/…") if len(path) > 1 else text


def _retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` of seconds (an HTTP date is taken as none)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
