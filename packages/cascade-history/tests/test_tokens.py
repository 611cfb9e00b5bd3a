"""Per-person API tokens in the history: made with a secret shown once, kept as its SHA-256,
listed without it, found by it, revoked."""

from __future__ import annotations

import time

import pytest

from cascade.history import TOKEN_PREFIX, History, HistoryError


def test_a_token_is_made_found_by_its_secret_and_listed_without_it(history: History) -> None:
    """The secret is returned once; the history keeps only what names the token."""
    made = history.create_token("alice@example.com", created_by="root", note="nightly")
    assert made.secret.startswith(TOKEN_PREFIX)
    assert len(made.secret) >= len(TOKEN_PREFIX) + 43  # 32 bytes, base64
    assert made.secret not in repr(made)
    token = made.token
    assert (token.holder, token.note, token.created_by) == ("alice@example.com", "nightly", "root")
    assert made.secret.startswith(token.label)
    assert len(token.label) < len(made.secret) // 3
    assert history.find_token(made.secret) == token
    assert history.find_token(made.secret + "x") is None
    assert history.find_token("not-a-token") is None
    [listed] = history.tokens()
    assert listed == token
    assert made.secret not in str(listed.to_json())
    assert token.state(time.time()) == "active"


def test_two_tokens_have_two_secrets(history: History) -> None:
    first = history.create_token("alice", created_by="root")
    second = history.create_token("alice", created_by="root")
    assert first.secret != second.secret
    assert [t.id for t in history.tokens(holder="alice")] == [second.token.id, first.token.id]
    assert history.tokens(holder="bob") == []


def test_a_revoked_token_is_found_revoked(history: History) -> None:
    """Revoking keeps the row (the list says when), and a second revoke keeps the first time."""
    made = history.create_token("alice", created_by="root")
    revoked = history.revoke_token(made.token.id)
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert revoked.state(time.time()) == "revoked"
    assert history.revoke_token(made.token.id) == revoked
    found = history.find_token(made.secret)
    assert found is not None
    assert found.state(time.time()) == "revoked"
    assert history.revoke_token(999) is None


def test_an_expiring_token_expires(history: History) -> None:
    soon = time.time() + 60
    made = history.create_token("alice", created_by="root", expires_at=soon)
    assert made.token.state(time.time()) == "active"
    assert made.token.state(soon) == "expired"
    with pytest.raises(ValueError, match="expire before"):
        history.create_token("alice", created_by="root", expires_at=time.time() - 1)


def test_a_use_is_noted(history: History) -> None:
    made = history.create_token("alice", created_by="root")
    history.token_used(made.token.id, 1234.5)
    [token] = history.tokens()
    assert token.last_used_at == 1234.5


@pytest.mark.parametrize(
    ("holder", "message"),
    [("  ", "empty"), ("a" * 300, "longer than"), ("al\nice", "control character")],
)
def test_a_holder_that_is_no_name_is_refused(history: History, holder: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        history.create_token(holder, created_by="root")
    assert history.tokens() == []


def test_a_reader_lists_but_cannot_make_or_revoke(database_url: str, history: History) -> None:
    made = history.create_token("alice", created_by="root")
    with History(database_url) as reader:
        assert [t.id for t in reader.tokens()] == [made.token.id]
        assert reader.find_token(made.secret) == made.token
        with pytest.raises(HistoryError, match="read-only"):
            reader.create_token("bob", created_by="root")
        with pytest.raises(HistoryError, match="read-only"):
            reader.revoke_token(made.token.id)
