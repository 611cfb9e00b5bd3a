"""The bodies: Slack's ``text`` and ``blocks``; generic JSON with every field; digests."""

from __future__ import annotations

from cascade.notify import Notification, body, digest_body, last_line

FAILED = Notification(
    kind="run.failed", key="run.failed:" + "a" * 32, at=0.0, org_id="acme", project_id="etl",
    run_id="a" * 32, run_name="nightly", source="host-1", task_id="load-3", task_name="load",
    error="task 'load' (load-3) failed: ValueError: bad", error_line="ValueError: bad",
    url="https://dash.example/runs/" + "a" * 32,
)  # fmt: skip


def test_slack_has_text_and_blocks_with_the_link() -> None:
    sent = body(FAILED, "slack")
    assert sent["text"] == "run nightly (aaaaaaaaaaaa) failed in acme/etl: task load (load-3)"
    texts = [block.get("text", {}).get("text", "") for block in sent["blocks"]]
    assert "error: ValueError: bad" in texts[1]
    assert f"<{FAILED.url}|open the run>" in texts


def test_generic_has_every_field() -> None:
    sent = body(FAILED, "generic")
    assert sent["event"] == "run.failed"
    assert sent["task_name"] == "load"
    assert sent["at"] == "1970-01-01T00:00:00+00:00"
    assert "runs" not in sent


def test_a_digest_counts_by_kind() -> None:
    sent = digest_body([FAILED] * 12, "generic")
    assert sent["text"] == "12 events: 12 run.failed"
    assert len(sent["events"]) == 12
    assert "… and 2 more" in digest_body([FAILED] * 12, "slack")["blocks"][1]["text"]["text"]


def test_the_traceback_s_last_line() -> None:
    assert last_line("Traceback...\n  File x\nValueError: bad\n", "e") == "ValueError: bad"
    assert last_line(None, "the error") == "the error"
