"""`cascade token create|list|revoke` on a SQLite history, and `cascade audit` showing who with
what vouched for the name, or `(claimed)`, and the dashboards' refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from cascade.cli import app
from cascade.cli.plumbing import CliContext
from cascade.history import History, Received
from cascade.interfaces import decode_constraint


def _invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), obj=CliContext(console=Console(width=250)))


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "history.sqlite3")
    History(path, mode="write").close()
    return path


def test_a_token_is_made_listed_and_revoked(db: str) -> None:
    made = _invoke("token", "create", "alice@example.com", "--note", "nightly", "--expires",
                   "30d", "--as", "root", "--db", db)  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("cascade_")
    assert "shown this once" in made.stderr
    with History(db) as history:
        token = history.find_token(secret)
    assert token is not None
    assert (token.holder, token.note, token.created_by) == ("alice@example.com", "nightly", "root")
    listed = _invoke("token", "list", "--db", db)
    assert listed.exit_code == 0
    assert "alice@example.com" in listed.output
    assert "active" in listed.output
    assert secret not in listed.output
    revoked = _invoke("token", "revoke", str(token.id), "--db", db)
    assert revoked.exit_code == 0
    assert "revoked" in revoked.output
    [row] = json.loads(_invoke("token", "list", "--json", "--db", db).output)
    assert (row["state"], row["holder"]) == ("revoked", "alice@example.com")
    assert "secret" not in row
    assert row["expires_at"] > time.time() + 29 * 86400


def test_bad_input_is_a_clear_error(db: str) -> None:
    assert _invoke("token", "create", " ", "--db", db).exit_code == 2
    assert _invoke("token", "create", "a", "--expires", "soon", "--db", db).exit_code == 2
    missing = _invoke("token", "revoke", "9", "--db", db)
    assert missing.exit_code == 1
    assert "no token 9" in missing.output
    assert _invoke("token", "revoke", "x", "--db", db).exit_code == 2
    assert json.loads(_invoke("token", "list", "--json", "--db", db).output) == []


def test_a_history_at_an_older_revision_is_not_migrated(tmp_path: Path) -> None:
    """Making a token never migrates a history: it says to."""
    import sqlalchemy as sa
    from alembic import command

    from cascade.history import alembic_config

    path = tmp_path / "old.sqlite3"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0008")
    engine.dispose()
    answer = _invoke("token", "create", "alice", "--db", str(path))
    assert answer.exit_code == 1
    assert "migrate it" in answer.output


def test_the_audit_shows_vouched_claimed_and_refused(db: str) -> None:
    now = time.time()
    topic = "cascade/constraints/task/etl_x/pause"
    with History(db, mode="write") as history:
        said = {"type": "pause", "params": {}}
        history.store(
            [
                Received(topic, decode_constraint({"id": "a", "scope": "task:etl_x", **said,
                                                   "issued_by": "alice@example.com"}), now - 9),
                Received("cascade/constraints/global/pause", decode_constraint(
                    {"id": "b", "scope": "global", **said, "issued_by": "bob"}), now - 5),
            ]
        )  # fmt: skip
        history.record_access(who="alice@example.com", via="oidc", action="pause",
                              target="task:etl_x", outcome="allowed", at=now - 8.5)  # fmt: skip
        history.record_access(who="vera@example.com", via="proxy", action="pause",
                              target="global", outcome="refused",
                              reason="vera@example.com is not an operator of scope global",
                              at=now - 1)  # fmt: skip
    table = _invoke("audit", "--db", db).output
    lines = table.splitlines()
    [alice] = [line for line in lines if "task:etl_x" in line]
    [bob] = [line for line in lines if "bob" in line]
    [vera] = [line for line in lines if "refused" in line]
    assert "alice@example.com (oidc)" in alice
    assert "bob (claimed)" in bob
    assert "vera@example.com (proxy)" in vera
    assert "not an operator of scope global" in vera
    events = json.loads(_invoke("audit", "--db", db, "--json").output)
    assert [(e["action"], e["vouched"]) for e in events] == [
        ("refused", "proxy"), ("set", None), ("set", "oidc"),
    ]  # fmt: skip
    assert {"issued_by", "reason", "scope", "type", "topic", "stopped"} <= set(events[0])
