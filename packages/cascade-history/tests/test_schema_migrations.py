"""The schema is Alembic's: an empty database migrates to the models, an upgrade keeps the data."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cascade.history import DashboardSession, History, HistoryError, alembic_config
from cascade.history.store._schema import metadata
from cascade.reader import SourceGaps

from .messages import T0, lifecycle


def head() -> str:
    """The newest revision of the package's migrations, as Alembic reads them."""
    newest = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert newest is not None
    return newest


def revision(connection: sa.Connection) -> str | None:
    """The database's revision, as Alembic reads it."""
    return MigrationContext.configure(connection).get_current_revision()


def test_an_empty_database_migrates_to_the_models(database_url: str) -> None:
    """Like `alembic check`: after the migrations, autogenerate finds nothing to change."""
    with History(database_url, mode="write") as history:
        engine = sa.create_engine(history.url)
    try:
        with engine.connect() as connection:
            assert revision(connection) == head()
            context = MigrationContext.configure(connection)
            assert compare_metadata(context, metadata) == []
            tables = set(sa.inspect(connection).get_table_names())
            assert tables == {*metadata.tables, "alembic_version"}
    finally:
        engine.dispose()


def test_reopening_keeps_the_data(database_url: str) -> None:
    """Opening an up-to-date database again migrates nothing and loses nothing."""
    with History(database_url, mode="write") as history:
        history.store([lifecycle("r1", "ENGINE_STARTED", T0)])
    with History(database_url, mode="write") as history:
        assert [run.run_id for run in history.runs()] == ["r1"]


def test_the_migrations_go_down_and_up_again(database_url: str) -> None:
    """Every revision can be undone (base: no tables) and redone."""
    with History(database_url, mode="write") as history:
        engine = sa.create_engine(history.url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        with engine.connect() as connection:
            assert set(sa.inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    with History(database_url, mode="write") as history:
        assert history.runs() == []


def test_a_database_from_a_newer_version_is_refused(database_url: str) -> None:
    """A revision this package does not know: one line saying to upgrade, nothing changed."""
    with History(database_url, mode="write") as history:
        engine = sa.create_engine(history.url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    finally:
        engine.dispose()
    with pytest.raises(HistoryError, match=r"revision f00d.*upgrade cascade-history"):
        History(database_url, mode="write")


def test_without_migrate_nothing_is_created(database_url: str) -> None:
    """``migrate=False`` opens the database as it is."""
    with History(database_url, migrate=False, mode="write") as history:
        engine = sa.create_engine(history.url)
    try:
        with engine.connect() as connection:
            assert revision(connection) is None
    finally:
        engine.dispose()


def test_a_database_of_revision_1_with_data_upgrades_keeping_it(database_url: str) -> None:
    """A history written by the first release (revision 0001) is migrated on open: every run,
    event, presence and constraint change is still there, and the new gap counts work."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
        with engine.connect() as connection:
            assert "source_gaps" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:  # what revision 0001 holds, written as its tables are
        with engine.begin() as connection:
            _insert_revision_1_data(connection)
    finally:
        engine.dispose()
    with History(database_url, mode="write") as history:
        engine = sa.create_engine(history.url)
        try:
            with engine.connect() as connection:
                assert revision(connection) == head()
        finally:
            engine.dispose()
        [run] = history.runs()
        assert (run.run_id, run.tasks, run.missing_events) == ("r1", {"FAILED": 1}, 2)
        detail = history.run("r1")
        assert detail is not None
        assert detail.tasks[0].error == "E: x"
        assert [(e.action, e.scope) for e in history.audit()] == [("set", "global")]
        # revision 0003 filled the rollup from the events already there
        [rolled] = history.tasks(exact=False)
        [exact] = history.tasks(exact=True)
        assert rolled.approximate
        assert (rolled.task_name, rolled.runs, rolled.executions, rolled.failures) == (
            exact.task_name,
            exact.runs,
            exact.executions,
            exact.failures,
        )
        assert abs(rolled.p50_ms - exact.p50_ms) <= 0.025 * exact.p50_ms
        assert history.gaps() == []
        history.store([], gaps={"host-1": SourceGaps(2, T0)}, recorder="rec")
        assert [(g.source, g.missed) for g in history.gaps()] == [("host-1", 2)]


def _insert_revision_1_data(connection: sa.Connection) -> None:
    """A failed task of a numbered run (2 of its 5 numbers missing), a presence change and a
    constraint set: the rows revision 0001's tables hold, without today's code."""

    def insert(table: str, **values: object) -> None:
        columns = ", ".join(values)
        names = ", ".join(f":{key}" for key in values)
        connection.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({names})"), values)

    insert("runs", run_id="r1", org_id="local", project_id="default", source="host-1",
           started_at=T0, last_ts=T0 + 3, ended_at=None, status="Running", error=None,
           planned_tasks=1, dropped_telemetry=0, last_seq=5)  # fmt: skip
    insert("run_events", run_id="r1", seq=1, event="ENGINE_STARTED", ts=T0, status=None,
           error=None, tasks=1)  # fmt: skip
    for seq, state, ts, error in ((2, "RUNNING", T0 + 1, ""), (4, "FAILED", T0 + 2, "E: x")):
        insert("task_events", run_id="r1", seq=seq, task_id="a-1", task_name="a", state=state,
               ts=ts, duration_ms=9.0 if error else 0.0, error=error)  # fmt: skip
    insert("presence", source="host-1", status="online", session=1, ts=T0, received_at=T0,
           reason=None, conflict_session=None)  # fmt: skip
    insert("constraint_events", topic="cascade/constraints/global/pause", topic_key="k",
           change=1, action="set", scope="global", type="pause", params="{}",
           constraint_id="pause-global", expires_at=None, at=T0,
           retained=False)  # fmt: skip


def test_a_database_of_revision_8_with_data_upgrades_keeping_it(database_url: str) -> None:
    """Revision 0009 adds the access audit and the API tokens to a history written at 0008:
    its runs and audit are still there, and the new tables work."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0008")
            _insert_revision_1_data(connection)
        with engine.connect() as connection:
            assert "api_tokens" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
    with History(database_url, mode="write") as history:
        assert [run.run_id for run in history.runs()] == ["r1"]
        assert [(e.action, e.scope, e.vouched) for e in history.audit()] == [
            ("set", "global", None)
        ]
        made = history.create_token("alice", created_by="root")
        assert history.find_token(made.secret) == made.token
        history.record_access(
            who="vera", via="oidc", action="pause", target="global", outcome="refused"
        )
        assert history.audit()[0].action == "refused"


def test_a_database_of_revision_9_with_access_rows_upgrades_keeping_them(
    database_url: str,
) -> None:
    """Revision 0010 adds the refusals' counts and the sign-in sessions to a history written at
    0009: a refusal already there counts 1; a folded one counts what it was told; a session is
    kept, listed, and revoked once."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0009")
            connection.execute(
                sa.text(
                    "INSERT INTO access_events (at, who, via, action, target, outcome, reason)"
                    " VALUES (:at, 'vera', 'oidc', 'pause', 'global', 'refused', 'no role')"
                ),
                {"at": T0},
            )
    finally:
        engine.dispose()
    with History(database_url, mode="write") as history:
        assert [(e.issued_by, e.count) for e in history.audit()] == [("vera", 1)]
        row = history.record_access(who="eve", via="oidc", action="read", target="/api/state",
                                    outcome="refused", claim="email", at=T0 + 1)  # fmt: skip
        history.count_access(row, 300, T0 + 50)
        history.count_access(row, 7, T0 + 9)  # late and smaller: changes nothing
        newest = history.audit()[0]
        assert (newest.issued_by, newest.count, newest.last_at) == ("eve", 300, T0 + 50)
        assert newest.vouched == "oidc:email"
        session = DashboardSession("h" * 32, "alice", "email", T0, T0 + 3600)
        history.add_session(session)
        assert history.sessions() == [session]
        ended = history.revoke_sessions(by="root", at=T0 + 10, who="alice")
        assert [(s.handle, s.revoked_by) for s in ended] == [("h" * 32, "root")]
        assert history.revoke_sessions(by="root", at=T0 + 11, handle="h" * 32) == []
        assert not history.sessions()[0].live(T0 + 12)


def _runs_columns_written_at(database_url: str, revision: str) -> set[str]:
    """Migrate an empty history to ``revision`` and write revision 1's data: its runs'
    columns."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
            _insert_revision_1_data(connection)
        with engine.connect() as connection:
            return {c["name"] for c in sa.inspect(connection).get_columns("runs")}
    finally:
        engine.dispose()


def test_a_database_of_revision_12_upgrades_with_runs_nameless(database_url: str) -> None:
    """Revision 0013 adds a run's name, origin and a reused task's run to a history written
    at 0012: its runs are still there, without name nor origin, and a new run has them."""
    assert "name" not in _runs_columns_written_at(database_url, "0012")
    with History(database_url, mode="write") as history:
        [run] = history.runs()
        assert (run.run_id, run.name, run.origin, run.replaced_by) == ("r1", None, None, [])
        origin = {"workflow": "nightly", "rerun_of": "r1", "root_run": "r1", "request_id": "q"}
        history.store([lifecycle("r2", "ENGINE_STARTED", T0 + 9, name="nightly", origin=origin)])
        assert [r.run_id for r in history.runs(name="nightly")] == ["r2"]
        detail = history.run("r1")
        assert detail is not None
        assert [link.run_id for link in detail.run.replaced_by] == ["r2"]
        assert detail.tasks[0].reused_from is None
        assert [e.run_id for e in history.audit() if e.action == "start"] == ["r2"]


def test_a_database_of_revision_15_upgrades_with_runs_unscheduled(database_url: str) -> None:
    """Revision 0016 adds the schedule and slot that started a run to a history written at
    0015: its runs are still there, naming no schedule, and a new run names its own."""
    assert "schedule" not in _runs_columns_written_at(database_url, "0015")
    with History(database_url, mode="write") as history:
        [run] = history.runs()
        assert (run.run_id, run.schedule, run.scheduled_for) == ("r1", None, None)
        origin = {
            "workflow": "load",
            "schedule": "nightly",
            "scheduled_for": "2026-11-27T01:00:00+00:00",
        }
        history.store([lifecycle("r2", "ENGINE_STARTED", T0 + 9, origin=origin)])
        assert [r.run_id for r in history.runs(schedule="nightly")] == ["r2"]


def test_a_database_of_revision_18_upgrades_with_runs_graphless(database_url: str) -> None:
    """Revision 0019 adds the runs' graphs to a history written at 0018: its runs are still
    there, without a graph, and a new run has its own."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0018")
            _insert_revision_1_data(connection)
            assert "run_graphs" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
    graph = {"nodes": [{"id": "a-1", "name": "a", "after": []},
                       {"id": "b-2", "name": "b", "after": ["a-1"]}]}  # fmt: skip
    with History(database_url, mode="write") as history:
        assert [run.run_id for run in history.runs()] == ["r1"]
        assert history.graph("r1") is None
        history.store([lifecycle("r2", "ENGINE_STARTED", T0 + 9, tasks=2, graph=graph)])
        recorded = history.graph("r2")
        assert recorded is not None
        assert recorded.graph is not None
        assert [(n.id, n.after) for n in recorded.graph.nodes] == [("a-1", []), ("b-2", ["a-1"])]


def test_a_database_of_revision_19_upgrades_with_runs_that_carry_nothing_on(
    database_url: str,
) -> None:
    """Revision 0020 adds what a run carries on to a history written at 0019: its runs carry
    nothing on; a carry-on recorded after says the run it carries on and the engine that died,
    and the lost run lists it as carried on after that engine."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0019")
            _insert_revision_1_data(connection)
    finally:
        engine.dispose()
    with History(database_url, mode="write") as history:
        (first,) = history.runs()
        assert (first.carried_on_from, first.lost_engine) == (None, None)
        origin = {"workflow": "etl", "rerun_of": "r1", "root_run": "r1",
                  "carried_on_from": "r1", "lost_engine": "server-a", "carry_ons": 1}  # fmt: skip
        history.store([lifecycle("r2", "ENGINE_STARTED", T0 + 9, origin=origin)])
        carried = history.run("r2")
        assert carried is not None
        assert (carried.run.carried_on_from, carried.run.lost_engine) == ("r1", "server-a")
        lost = history.run("r1")
        assert lost is not None
        assert [(link.run_id, link.lost_engine) for link in lost.run.replaced_by] == [
            ("r2", "server-a")
        ]
        assert lost.run.replaced_by[0].to_json()["lost_engine"] == "server-a"


def test_a_database_of_revision_20_upgrades_with_runs_no_trigger_started(
    database_url: str,
) -> None:
    """Revision 0021 adds what started a run on an event to a history written at 0020: its
    runs name no trigger; a run a trigger started, recorded after, says the trigger, its event
    and the run it followed (docs/triggers.md)."""
    with History(database_url, migrate=False, mode="write") as old:
        engine = sa.create_engine(old.url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0020")
            _insert_revision_1_data(connection)
    finally:
        engine.dispose()
    with History(database_url, mode="write") as history:
        (first,) = history.runs()
        assert first.origin is None or "trigger" not in first.origin
        origin = {"workflow": "report", "trigger": "report_after_etl", "followed_run": "r1",
                  "trigger_event": "run r1 of etl Succeeded on s1", "trigger_depth": 1}  # fmt: skip
        history.store([lifecycle("r2", "ENGINE_STARTED", T0 + 9, origin=origin)])
        triggered = history.run("r2")
        assert triggered is not None
        said = triggered.run.origin
        assert said is not None
        assert (said["trigger"], said["followed_run"]) == ("report_after_etl", "r1")
        assert said["trigger_event"] == "run r1 of etl Succeeded on s1"
