"""History fault (d): hostile payloads on the topics a recorder reads, over a real broker.

Every payload that is not the protocol is rejected and counted (by the connector when it is not
a JSON object, by the recorder otherwise), never stored; what is the protocol but hostile text
(escape sequences, markup, bidirectional overrides, NUL, huge names) is stored escaped and
bounded (a lone surrogate cannot come: it is no JSON a connector takes), and the readers
(`cascade runs`, `run`, `tasks`, `audit`) show it as text: no character a terminal acts on,
markup printed as written.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from cascade.connectors.mqtt import MqttConnector
from cascade.history import History, Recorder
from cascade.interfaces import constraint_topic
from cascade.testkit import Inbox, OwnBroker

from .conftest import Figures
from .history_helpers import cli

_NOW = datetime.now(timezone.utc).isoformat()
_HOSTILE_NAME = "load\x1b]0;pwned\x07[bold red]<script>alert(1)</script>\u202egnp.exe"
_HOSTILE_ERROR = "ValueError: \x1b[2J\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\ \x9b31m\x00"
_ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _envelope(run_id: str, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    envelope = {
        "ts": _NOW,
        "run_id": run_id,
        "org_id": "local",
        "project_id": "hostile",
        "source": "hostile-engine",
        "body": body,
        **changes,
    }
    return {k: v for k, v in envelope.items() if v is not None}


def _task(run_id: str, name: str = "t", error: str = "", **changes: Any) -> dict[str, Any]:
    body = {
        "type": "TaskStateEvent",
        "task_id": f"{name[:50]}-1",
        "task_name": name,
        "state": "FAILED",
        "duration_ms": 5.0,
        "error": error,
    }
    return _envelope(run_id, body, **changes)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: surrogates travel as \\u escapes


_HOSTILE_SCOPE = "task:\x1b[31m[red]x"


def _payloads(events: str, status: str, constraint: str) -> list[tuple[str, bytes, str]]:
    """(topic, payload, who rejects it: ``connector``, ``recorder`` or ``nobody``: stored)."""
    ok = uuid.uuid4().hex
    big = "x" * (300 * 1024)
    return [
        # not a JSON object: the connector rejects
        (events, b"\xff\xfe\xfd", "connector"),
        (events, b"[1, 2]", "connector"),
        (events, b"null", "connector"),
        (events, b'"pause"', "connector"),
        (events, b"[" * 100_000 + b"]" * 100_000, "connector"),
        (events, b'{"run_id": "x"', "connector"),
        (events, b"\xed\xa0\x80", "connector"),
        (status, b"\x00", "connector"),
        # JSON objects that are not the protocol: the recorder rejects
        (events, _json({"hello": "world"}), "recorder"),
        (events, _json({k: v for k, v in _task("r").items() if k != "run_id"}), "recorder"),
        (events, _json(_envelope("r", {"type": "Nope"})), "recorder"),
        (events, _json(_task("r", seq=0)), "recorder"),
        (events, _json(_task("r", seq=10**30)), "recorder"),
        (events, _json(_task("r", ts="yesterday")), "recorder"),
        (events, _json(_task("x" * 2000)), "recorder"),  # a run id over 1,024 bytes
        (events, _json(_task("\ud800")), "connector"),  # a lone surrogate: not UTF-8
        (events, _json(_task("r", name=big)), "recorder"),  # over 256 KiB
        (events, _json({**_task("r"), "run_id": 5}), "recorder"),
        (status, _json({"status": "exploded", "source": "s"}), "recorder"),
        (status, _json({"status": "online", "reason": big[:20_000]}), "recorder"),
        (constraint, _json({"id": "x", "scope": "cluster:all", "type": "pause"}), "recorder"),
        (constraint, _json({"scope": "global", "type": "pause", "params": {"x": 1}}), "recorder"),
        # the protocol, with hostile text: stored, escaped and bounded
        (events, _json(_task(ok, name=_HOSTILE_NAME, error=_HOSTILE_ERROR)), "nobody"),
        (events, _json(_task(ok, name="n" * 100_000, error="E" * 100_000)), "nobody"),
        (  # on its own scope's topic: a constraint is its topic's (another is refused)
            constraint_topic(_HOSTILE_SCOPE, "pause"),
            _json({"id": "p", "scope": _HOSTILE_SCOPE, "type": "pause", "params": {}}),
            "nobody",
        ),
    ]


@pytest.mark.timeout(120)
async def test_history_hostile_payloads(
    own_broker: OwnBroker, tmp_path: Path, figures: Figures
) -> None:
    """Each invalid payload counted once as rejected; hostile text stored inert, shown as text."""
    figures.scenario = "history (d) hostile payloads to the recorder"
    db = tmp_path / "history.sqlite3"
    events = "cascade/telemetry/local/hostile/r/events"
    constraint = "cascade/constraints/task/hostile/pause"
    payloads = _payloads(events, "cascade/status/hostile", constraint)
    expected = {who: sum(1 for *_, w in payloads if w == who) for who in ("connector", "recorder")}
    sentinel = Inbox()
    with History(db, mode="write") as history:
        connector = MqttConnector(own_broker.host, own_broker.port, presence=False)
        await connector.connect(require=True)
        recorder = Recorder(connector, history)
        try:
            await recorder.start()
            await connector.subscribe("cascade/sentinel", sentinel)
            async with aiomqtt.Client(own_broker.host, own_broker.port) as plain:
                for topic, raw, _ in payloads:
                    await plain.publish(topic, raw, qos=1)
                await plain.publish("cascade/sentinel", b"{}", qos=1)
            await sentinel.next(timeout=30)  # after every payload above: one connection's order
            await recorder.flush(timeout=30)
        finally:
            await recorder.stop()
            await connector.disconnect()
        stats = recorder.stats
        unreadable = connector.stats.rejected
        runs = history.runs()

    assert unreadable == expected["connector"]
    assert stats.rejected == expected["recorder"]
    assert (stats.stored, stats.dropped) == (3, 0)  # the two hostile texts and the constraint
    [run] = runs  # no run of any rejected payload
    assert run.project_id == "hostile"
    detail = json.loads(cli("run", run.run_id, "--db", str(db), "--json"))
    names = sorted(task["task_name"] for task in detail["tasks"])
    assert _HOSTILE_NAME in names  # stored as sent (it is text), the NUL and surrogate escaped
    assert any(len(name.encode()) <= 1024 and name.endswith("…[cut]") for name in names)
    errors = [task["error"] for task in detail["tasks"]]
    assert any(error.endswith("\x9b31m\\x00") for error in errors)  # the NUL escaped

    shown = [
        cli("runs", "--db", str(db)),
        cli("run", run.run_id, "--db", str(db)),
        cli("tasks", "--db", str(db)),
        cli("audit", "--db", str(db)),
    ]
    for out in shown:
        assert _ACTIVE.search(out) is None, out
    assert "[bold red]<script>alert(1)</script>" in shown[1]  # markup printed as written
    assert "\\x1b]0;pwned\\x07" in shown[1]
    assert "\\x1b[31m[red]x" in shown[3]

    figures.emitted = len(payloads)
    figures.delivered = stats.stored
    figures.dropped = 0
    figures.what = "-"
    figures.notes.append(
        f"{expected['connector']} not JSON objects (connector), {expected['recorder']} not the "
        f"protocol (recorder): all rejected and counted; 3 hostile texts stored inert"
    )
