"""`cascade schedules`: each served schedule once, from its servers' announcements."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from typer.testing import Result

from cascade.interfaces import ServedAnnouncement, ServedSchedule, served_topic
from cascade.interfaces.connector_kit import encode_payload

Invoke = Callable[..., Result]
Publish = Callable[[str, bytes], None]
NEXT = "2026-11-26T01:00:00+00:00"


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column shown."""
    monkeypatch.setenv("COLUMNS", "200")


def _announce(publish: Publish, source: str, *schedules: ServedSchedule) -> None:
    said = ServedAnnouncement(
        source=source, org_id="local", project_id="default", workflows=[], capacity=1,
        schedules=list(schedules),
    )  # fmt: skip
    publish(served_topic("local", "default", source), encode_payload(said))


def _nightly(**fields: object) -> ServedSchedule:
    return ServedSchedule(
        name="nightly", workflow="etl", cron="0 2 * * *", tz="Europe/Berlin", next=NEXT,
        upcoming=["2026-11-27T01:00:00+00:00"], **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_schedule_served_twice_is_listed_once_with_the_last_slot_fired_and_its_run(
    invoke: Invoke, publish_retained: Publish
) -> None:
    """Two servers of `nightly`: one row, the last slot the one that fired it says (its run),
    both servers listed; the table says when it fires and its next slot."""
    _announce(
        publish_retained, "etl-1",
        _nightly(last="2026-11-25T01:00:00+00:00", last_slot="2026-11-24T01:00:00+00:00",
                 last_run="a" * 32),
    )  # fmt: skip
    _announce(
        publish_retained, "etl-2",
        _nightly(last="2026-11-25T01:00:00+00:00", last_slot="2026-11-25T01:00:00+00:00",
                 last_run="b" * 32, skipped=1, last_skipped="2026-11-23T01:00:00+00:00: x"),
    )  # fmt: skip
    result = invoke("schedules", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("nightly") == 1
    assert "0 2 * * * Europe/Berlin" in result.stdout
    assert "2026-11-26 01:00:00Z" in result.stdout
    assert "2026-11-25 01:00:00Z bbbbbbbbbbbb" in result.stdout
    assert "active" in result.stdout
    listed = json.loads(invoke("schedules", "--json", "--timeout", "1").stdout)["schedules"]
    assert [s["name"] for s in listed] == ["nightly"]
    (nightly,) = listed
    assert (nightly["last_slot"], nightly["last_run"], nightly["last_source"]) == (
        "2026-11-25T01:00:00+00:00", "b" * 32, "etl-2",
    )  # fmt: skip
    assert nightly["next"] == NEXT
    assert nightly["upcoming"] == ["2026-11-27T01:00:00+00:00"]
    assert sorted(nightly["servers"]) == ["etl-1", "etl-2"]
    assert (nightly["paused"], nightly["skipped"]) == (False, 1)


def test_a_paused_schedule_says_who_paused_it_until_when_and_why(
    invoke: Invoke, publish_retained: Publish
) -> None:
    _announce(
        publish_retained, "etl-1",
        _nightly(paused=True, paused_by="alice", paused_reason="db migration",
                 paused_until=1795000000.0),
    )  # fmt: skip
    result = invoke("schedules", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert "paused by alice until 2026-11-18 11:06:40Z: db migration" in " ".join(
        result.stdout.split()
    )
    (nightly,) = json.loads(invoke("schedules", "--json", "--timeout", "1").stdout)["schedules"]
    assert (nightly["paused"], nightly["paused_by"], nightly["paused_until"]) == (
        True, "alice", 1795000000.0,
    )  # fmt: skip


def test_no_schedule_served_is_said(invoke: Invoke, publish_retained: Publish) -> None:
    _announce(publish_retained, "etl-1")
    result = invoke("schedules", "--timeout", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no schedule is served (no announcement names one)\n"
