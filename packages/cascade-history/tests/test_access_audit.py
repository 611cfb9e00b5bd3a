"""The dashboards' access audit in the history: refusals are audit events of their own, and an
allowed row vouches for the set, clear or cancel it matches (same person, action and target,
within a few seconds); the rest is claimed."""

from __future__ import annotations

import pytest

from cascade.history import History

from .messages import T0, cancel_reply, cleared, constraint, lifecycle, note

TOPIC = "cascade/constraints/task/etl_x/pause"
RUN = "58a88765cea2c1d0a1f3c2b7e9d84a61"


def allowed(history: History, who: str, via: str, action: str, target: str, at: float) -> None:
    history.record_access(who=who, via=via, action=action, target=target, outcome="allowed", at=at)


def test_a_refusal_is_an_audit_event_with_its_reason(history: History) -> None:
    """Who was refused what, on what, why, and what vouched for the name."""
    history.record_access(
        who="vera@example.com", via="oidc", action="pause", target="task:etl_*",
        outcome="refused", reason="vera@example.com is not an operator of scope task:etl_*",
        at=T0,
    )  # fmt: skip
    history.record_access(
        who="vera@example.com", via="oidc", action="cancel", target=f"run:{RUN}",
        outcome="refused", reason="not an operator", at=T0 + 1,
    )  # fmt: skip
    cancel, pause = history.audit()
    assert (pause.action, pause.type, pause.scope, pause.issued_by, pause.vouched) == (
        "refused", "pause", "task:etl_*", "vera@example.com", "oidc",
    )  # fmt: skip
    assert pause.reason == "vera@example.com is not an operator of scope task:etl_*"
    assert (cancel.scope, cancel.run_id) == (f"run:{RUN}", RUN)
    as_json = pause.to_json()
    assert as_json["vouched"] == "oidc"
    assert as_json["action"] == "refused"


def test_an_allowed_control_vouches_for_the_set_it_matches(history: History) -> None:
    """The dashboard's row names the person as OIDC signed them in: the set is vouched for;
    the same name claimed by another writer later, on another scope, or by someone else, is not."""
    history.store(
        [
            constraint(TOPIC, "task:etl_x", "pause", T0, issued_by="alice@example.com"),
            cleared(TOPIC, T0 + 60),
            note(TOPIC, T0 + 60.2, issued_by="alice@example.com"),
            constraint(TOPIC, "task:etl_x", "pause", T0 + 120, issued_by="alice@example.com"),
            constraint(TOPIC, "task:etl_x", "pause", T0 + 200, issued_by="bob"),
        ]
    )
    allowed(history, "alice@example.com", "oidc", "pause", "task:etl_x", T0 + 0.3)
    allowed(history, "alice@example.com", "api-token", "resume", "task:etl_x", T0 + 59.5)
    allowed(history, "bob", "proxy", "pause", "task:other", T0 + 200)  # another scope
    events = [(e.action, e.at, e.issued_by, e.vouched) for e in history.audit()]
    assert events == [
        ("set", T0 + 200, "bob", None),
        ("set", T0 + 120, "alice@example.com", None),  # a claim, two minutes after her row
        ("cleared", T0 + 60, "alice@example.com", "api-token"),
        ("set", T0, "alice@example.com", "oidc"),
    ]


def test_one_row_vouches_for_one_event_the_nearest(history: History) -> None:
    """Two sets of one name on one scope, a second apart, and one dashboard row: only the set
    nearest to it is vouched for."""
    history.store(
        [
            constraint(TOPIC, "task:etl_x", "pause", T0, issued_by="alice"),
            constraint(TOPIC, "task:etl_x", "pause", T0 + 2, reason="again", issued_by="alice"),
        ]
    )
    allowed(history, "alice", "token", "pause", "task:etl_x", T0 + 1.8)
    assert [(e.at, e.vouched) for e in history.audit()] == [(T0 + 2, "token"), (T0, None)]


def test_a_cancel_is_vouched_for_by_the_dashboards_row(history: History) -> None:
    """A cancel answered by its engine, and the dashboard's row after the answer."""
    history.store([lifecycle(RUN, "ENGINE_STARTED", T0 - 10, seq=1, source="host-1")])
    history.store([cancel_reply("req-1", RUN, T0, issued_by="alice@example.com")])
    allowed(history, "alice@example.com", "oidc", "cancel", f"run:{RUN}", T0 + 0.1)
    [cancel] = history.audit()
    assert (cancel.action, cancel.vouched) == ("cancelled", "oidc")


def test_read_mode_cannot_write_the_access_audit(database_url: str, history: History) -> None:
    """A reader's history refuses to write."""
    from cascade.history import HistoryError

    with History(database_url) as reader, pytest.raises(HistoryError, match="read-only"):
        reader.record_access(
            who="a", via="oidc", action="pause", target="global", outcome="allowed"
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("via", "password", "via must be one of"), ("outcome", "maybe", "outcome must be")],
)
def test_a_row_that_cannot_be_is_a_value_error(
    history: History, field: str, value: str, message: str
) -> None:
    """Bad input is a clear error, and nothing is written."""
    row = {"who": "a", "via": "oidc", "action": "pause", "target": "global", "outcome": "refused"}
    with pytest.raises(ValueError, match=message):
        history.record_access(**{**row, field: value})  # type: ignore[arg-type]
    assert history.audit() == []


def test_access_rows_are_pruned_with_the_rest(history: History) -> None:
    """Retention goes by the rows' time, as for the constraints' changes."""
    history.record_access(
        who="a", via="oidc", action="pause", target="global", outcome="refused", at=T0
    )
    assert history.prune(T0 + 1) == 1
    assert history.audit() == []
