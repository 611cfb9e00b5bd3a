"""`Webhook` through the environment's proxy (``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as
httpx reads them), a real one: proxy.py in a process of its own on loopback, posting to a real
receiver on loopback. The proxy is the operator's own: connecting to it is allowed wherever it
is; the destination is still checked, before the proxy is asked anything. The receiver is
reached as ``localhost`` (allowed by name): the proxy's address, 127.0.0.1, is in no
allow-list."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from cascade.notify import Destinations, Posted, Webhook
from cascade.testkit import ForwardProxy, WebhookReceiver

from .test_webhook_over_http import HUGE, LoopbackOnly

ALLOW_RECEIVER = ["localhost"]


def _named(receiver: WebhookReceiver, name: str) -> str:
    return receiver.url.replace("127.0.0.1", name)


async def _post(url: str, destinations: Destinations) -> tuple[Posted, list[str]]:
    """How one post to ``url`` ended, and its attempts' outcomes."""
    seen: list[str] = []
    hook = Webhook(url, attempts=1, on_attempt=seen.append, destinations=destinations)
    try:
        return await hook.post({"text": url.rsplit(":", 1)[0]}), seen
    finally:
        await hook.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_post_goes_through_the_environments_proxy(
    receiver: WebhookReceiver, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, proxy.url)
    url = _named(receiver, "localhost")
    hook = Webhook(url, attempts=1, destinations=Destinations(allow=ALLOW_RECEIVER))
    try:
        posted = await hook.post({"text": "through"})
    finally:
        await hook.close()
    assert posted.ok, posted.error
    assert [post["text"] for _, post in receiver.posts] == ["through"]
    (served,) = proxy.wait_for_requests(1)
    assert served.startswith(f"POST localhost:{urlsplit(url).port}/"), served


@pytest.mark.asyncio
async def test_a_huge_answer_through_the_proxy_is_read_only_to_a_bound(
    receiver: WebhookReceiver, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 64 KiB bound holds through a proxy: the post is taken in time, the rest of the
    answer never read, the connection to the proxy closed (and the proxy's to the receiver)."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    receiver.answer_size = HUGE
    hook = Webhook(
        _named(receiver, "localhost"), timeout=10.0, attempts=1,
        destinations=Destinations(allow=ALLOW_RECEIVER),
    )  # fmt: skip
    started = time.monotonic()
    try:
        posted = await hook.post({"text": "x"})
    finally:
        await hook.close()
    assert posted.ok, posted.error
    assert time.monotonic() - started < hook.timeout
    assert receiver.wait_answered()
    assert receiver.answered < 16 * 1024 * 1024  # the sockets' buffers, the proxy's (~7 MiB)
    proxy.wait_for_requests(1)


@pytest.mark.asyncio
@pytest.mark.parametrize("claimed", [["10.0.0.5"], ["93.184.216.34", "127.0.0.1"]])
async def test_a_name_resolving_inside_is_refused_without_asking_the_proxy(
    receiver: WebhookReceiver,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    claimed: list[str],
) -> None:
    """Refused, counted ``refused``, before anything is sent to the proxy: what the proxy
    served afterwards is only the allowed post made after it."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    destinations = Destinations(allow=ALLOW_RECEIVER, resolve=lambda host, port: claimed)
    refused, seen = await _post(_named(receiver, "hooks.example.net"), destinations)
    assert not refused.ok
    assert seen == ["refused"]
    assert claimed[-1] in refused.error
    allowed, _ = await _post(_named(receiver, "localhost"), destinations)
    assert allowed.ok
    (served,) = proxy.wait_for_requests(1)
    assert served.startswith("POST localhost:"), served
    assert receiver.requests == 1


@pytest.mark.asyncio
async def test_no_proxy_connects_directly_still_guarded(
    receiver: WebhookReceiver, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A destination ``NO_PROXY`` names is connected to directly, at the address checked (a
    stub resolves it; every direct connection goes to the loopback receiver); one that
    resolves inside is refused; a destination it does not name still goes through the
    proxy."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.net")
    answers = {"now": "93.184.216.34"}
    network = LoopbackOnly(int(urlsplit(receiver.url).port or 0))
    destinations = Destinations(
        allow=ALLOW_RECEIVER, resolve=lambda host, port: [answers["now"]], network=network
    )
    direct, _ = await _post(_named(receiver, "hooks.example.net"), destinations)
    assert direct.ok
    assert network.asked == ["93.184.216.34"]
    answers["now"] = "10.0.0.5"
    refused, seen = await _post(_named(receiver, "hooks.example.net"), destinations)
    assert seen == ["refused"]
    assert "10.0.0.5" in refused.error
    proxied, _ = await _post(_named(receiver, "localhost"), destinations)
    assert proxied.ok
    assert network.asked == ["93.184.216.34"]
    (served,) = proxy.wait_for_requests(1)
    assert served.startswith("POST localhost:"), served
    assert receiver.requests == 2


@pytest.mark.asyncio
async def test_https_goes_through_the_proxy_as_a_tunnel(
    receiver: WebhookReceiver, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``HTTPS_PROXY``: the proxy is asked for a tunnel (CONNECT) to the destination, TLS
    inside it (the receiver speaks plain HTTP, so the handshake fails: the tunnel is what is
    shown); an https destination resolving inside is refused before the proxy is asked."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    port = urlsplit(receiver.url).port
    destinations = Destinations(
        allow=ALLOW_RECEIVER, resolve=lambda host, port: ["169.254.169.254"]
    )
    refused, seen = await _post(f"https://hooks.example.net:{port}/x", destinations)
    assert seen == ["refused"]
    assert "cloud metadata" in refused.error
    tunnelled, seen = await _post(f"https://localhost:{port}/x", destinations)
    assert seen == ["unreachable"]
    assert not tunnelled.ok
    (served,) = proxy.wait_for_requests(1)
    assert served.startswith(f"CONNECT localhost:{port}"), served
