"""Who set a constraint, why and when: additive fields that never keep one from applying."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from cascade.interfaces import Constraint, InvalidMessageError, decode_constraint, encode_payload


class _OldConstraint(msgspec.Struct, kw_only=True):
    """The constraint as readers before these fields decode it (msgspec ignores the others)."""

    id: str
    scope: str
    type: str
    params: dict[str, Any] = {}
    expires_at: float | None = None


def test_without_provenance_the_payload_is_what_it_was() -> None:
    """A constraint built without them encodes to the same bytes as before they existed."""
    wire = json.loads(encode_payload(Constraint.pause("task:x")))
    assert wire == {
        "id": "pause-task:x",
        "scope": "task:x",
        "type": "pause",
        "params": {},
        "expires_at": None,
    }


def test_provenance_round_trips_and_old_readers_ignore_it() -> None:
    """reason, issued_by and issued_at travel as optional fields; an old reader decodes the rest."""
    limit = Constraint.concurrency(
        "task:load_*", 2, reason="warehouse maintenance", issued_by="alice", issued_at=1.5e9
    )
    raw = encode_payload(limit)
    wire = json.loads(raw)
    assert (wire["reason"], wire["issued_by"], wire["issued_at"]) == (
        "warehouse maintenance",
        "alice",
        1.5e9,
    )
    assert decode_constraint(raw) == limit
    old = msgspec.json.decode(raw, type=_OldConstraint)
    assert (old.scope, old.type, old.params) == ("task:load_*", "concurrency", {"limit": 2})


@pytest.mark.parametrize(
    ("field", "value"),
    [("reason", 42), ("issued_by", ["alice"]), ("issued_at", -1), ("issued_at", "noon")],
)
def test_malformed_provenance_is_dropped_not_the_constraint(field: str, value: Any) -> None:
    """A reader applies a constraint whose annotations are malformed, without them: readers
    that do not know the fields would apply it too."""
    payload = {"id": "p", "scope": "global", "type": "pause", "params": {}, field: value}
    payload["reason"] = payload.get("reason", "kept") if field != "reason" else value
    constraint = decode_constraint(json.dumps(payload).encode())
    assert (constraint.scope, constraint.type) == ("global", "pause")
    assert getattr(constraint, field) is msgspec.UNSET
    if field != "reason":
        assert constraint.reason == "kept"


def test_the_rest_of_a_constraint_stays_strict() -> None:
    """Dropping bad annotations never excuses a bad scope, type or limit."""
    payload = {"id": "c", "scope": "global", "type": "concurrency", "params": {"limit": -1}}
    with pytest.raises(InvalidMessageError) as raised:
        decode_constraint({**payload, "reason": 42})
    assert raised.value.path == "$.params.limit"


def test_builders_refuse_their_own_bad_annotations() -> None:
    """A writer's own annotations must be right: the builders do not drop them silently."""
    with pytest.raises(InvalidMessageError) as raised:
        Constraint.pause("global", issued_at=-5.0)
    assert raised.value.path == "$.issued_at"
