"""`Webhook` against a real HTTP receiver: a huge answer is read no further than a bound; a
name that resolves to an inside address is refused at post time, before any connection, and
a name that resolves to a global one is connected to at the address checked. Names resolve
through a stub, and every connection is made to the loopback receiver whatever address it was
asked for: nothing leaves loopback, even with the refusal broken."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import pytest

from cascade.notify import Destinations, Webhook
from cascade.testkit import WebhookReceiver

HUGE = 256 * 1024 * 1024


@pytest.mark.asyncio
async def test_a_huge_answer_is_read_only_to_a_bound(receiver: WebhookReceiver) -> None:
    """A 200 with a 256 MiB body is taken after at most 64 KiB of it, the connection closed:
    what the receiver got through is what the poster's socket buffers hold, not the body."""
    receiver.answer_size = HUGE
    hook = Webhook(
        receiver.url, timeout=10.0, attempts=1, destinations=Destinations(allow=["127.0.0.1"])
    )
    started = time.monotonic()
    try:
        posted = await hook.post({"text": "x"})
    finally:
        await hook.close()
    assert posted.ok
    assert posted.status == 200
    assert time.monotonic() - started < hook.timeout
    assert receiver.wait_answered()
    assert receiver.answered < 16 * 1024 * 1024


class LoopbackOnly(httpcore2.AsyncNetworkBackend):
    """Connects every connection to ``port`` on 127.0.0.1, keeping the address asked for."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[str] = []
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self.asked.append(host)
        return await self.inner.connect_tcp("127.0.0.1", self.port, timeout)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _named(receiver: WebhookReceiver, name: str) -> str:
    """The receiver's URL with ``name`` for its host."""
    return receiver.url.replace("127.0.0.1", name)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("claimed", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.20.30.40", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fe80::1", "link-local"),
        ("::ffff:192.168.1.1", "private"),
    ],
)
async def test_a_name_resolving_inside_is_refused_at_post_time(
    receiver: WebhookReceiver, claimed: str, kind: str
) -> None:
    """Refused, logged as such and counted ``refused``, final: nothing connected to."""
    network = LoopbackOnly(int(urlsplit(receiver.url).port or 0))
    destinations = Destinations(resolve=lambda host, port: [claimed], network=network)
    seen: list[str] = []
    hook = Webhook(
        _named(receiver, "hooks.example.net"), attempts=3, on_attempt=seen.append,
        destinations=destinations,
    )  # fmt: skip
    try:
        posted = await hook.post({"text": "x"})
    finally:
        await hook.close()
    assert not posted.ok
    assert seen == ["refused"]
    assert f"a {kind} address" in posted.error
    assert claimed in posted.error
    assert "s3cr3t" not in posted.error
    assert network.asked == []
    assert receiver.requests == 0


@pytest.mark.asyncio
async def test_a_name_is_connected_to_at_the_address_checked(receiver: WebhookReceiver) -> None:
    """A name that resolved to a global address when configured and starts resolving to a
    private one is refused; while it resolves to a global one, that address is connected to."""
    answers = {"now": "93.184.216.34"}
    network = LoopbackOnly(int(urlsplit(receiver.url).port or 0))
    destinations = Destinations(resolve=lambda host, port: [answers["now"]], network=network)
    url = _named(receiver, "hooks.example.net")
    destinations.check(url)
    hook = Webhook(url, attempts=1, destinations=destinations)
    try:
        assert (await hook.post({"text": "first"})).ok
        assert network.asked == ["93.184.216.34"]
        await hook.close()
        hook = Webhook(url, attempts=1, destinations=destinations)
        answers["now"] = "10.0.0.5"
        refused = await hook.post({"text": "second"})
    finally:
        await hook.close()
    assert not refused.ok
    assert "10.0.0.5" in refused.error
    assert network.asked == ["93.184.216.34"]
    assert [post["text"] for _, post in receiver.posts] == ["first"]
