"""``Webhook``: retries on 5xx and 429, none on another 4xx, the URL never said."""

from __future__ import annotations

import httpx2
import pytest

from cascade.notify import Webhook, redact

SECRET_URL = "https://hooks.example.com/services/T0/B0/s3cr3t"


def _hook(answers: list[int], seen: list[str]) -> Webhook:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(answers.pop(0) if answers else 200)

    async def no_wait(seconds: float) -> None:
        pass

    return Webhook(
        SECRET_URL, attempts=3, on_attempt=seen.append,
        transport=httpx2.MockTransport(answer), sleep=no_wait,
    )  # fmt: skip


def test_redact_keeps_the_scheme_and_host_only() -> None:
    assert redact(SECRET_URL) == "https://hooks.example.com/…"
    assert redact("http://127.0.0.1:8080/x?token=1") == "http://127.0.0.1:8080/…"


@pytest.mark.asyncio
async def test_a_5xx_is_retried_until_taken() -> None:
    seen: list[str] = []
    posted = await _hook([500, 503], seen).post({"text": "x"})
    assert posted.ok
    assert posted.attempts == 3
    assert seen == ["http_5xx", "http_5xx", "ok"]


@pytest.mark.asyncio
async def test_a_4xx_is_final_and_names_no_url() -> None:
    seen: list[str] = []
    posted = await _hook([404], seen).post({"text": "x"})
    assert not posted.ok
    assert posted.attempts == 1
    assert posted.status == 404
    assert "s3cr3t" not in posted.error
    assert seen == ["http_4xx"]


@pytest.mark.asyncio
async def test_attempts_used_up_fail() -> None:
    seen: list[str] = []
    posted = await _hook([500, 500, 500], seen).post({"text": "x"})
    assert not posted.ok
    assert posted.attempts == 3
    assert posted.status == 500


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not file://"):
        Webhook("file:///etc/passwd")


def test_the_longest_post_bounds_a_claim_s_lease() -> None:
    """Every attempt's timeout and the longest pause between two: five attempts of 10 s,
    four pauses of 30 s."""
    assert Webhook("https://hooks.example/x").longest == 170.0
    assert Webhook("https://hooks.example/x", timeout=1.0, attempts=1).longest == 1.0
