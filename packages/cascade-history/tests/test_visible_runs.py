"""``among``: the runs someone may see. Another org's or project's run is not there for them,
found (or not) by the same query that finds an unknown one: no prefix, page, log line or
search names it, and it costs what an unknown run costs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cascade.connector_kit.testing import received
from cascade.history import History, Received, decode_message
from cascade.interfaces.logs import LogBatch, logs_topic

from .logs import line
from .messages import T0, iso, lifecycle, task

MINE = "ab" + "1" * 30  # acme/etl
THEIRS = "ab" + "2" * 30  # globex/web
ALSO_THEIRS = "ac" + "3" * 30  # globex/web
UNKNOWN = "ad" + "4" * 30
ETL = frozenset({("acme", "etl")})
ACME = frozenset({("acme", None)})


def _run(run_id: str, org: str, project: str) -> list[Received]:
    logs = LogBatch(
        run_id=run_id, org_id=org, project_id=project, source="host-1", seq=1, ts=iso(T0),
        lines=[line("load", 1, "the secret word"), line("load", 2)],
    )  # fmt: skip
    batch = decode_message(received(logs_topic(org, project, run_id), logs), received_at=T0)
    assert batch is not None
    return [
        lifecycle(run_id, "ENGINE_STARTED", T0, tasks=1, org_id=org, project_id=project),
        task(run_id, "load-1", "RUNNING", T0 + 1, org_id=org, project_id=project),
        batch,
    ]


@pytest.fixture
def tenants(history: History) -> History:
    history.store(
        [
            *_run(MINE, "acme", "etl"),
            *_run(THEIRS, "globex", "web"),
            *_run(ALSO_THEIRS, "globex", "web"),
        ]
    )
    return history


@pytest.fixture
def statements(tenants: History) -> Iterator[list[str]]:
    """Every SQL statement run meanwhile (any engine's)."""
    seen: list[str] = []

    def note(*args: object) -> None:
        seen.append(str(args[2]))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", note)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", note)


def test_a_prefix_names_only_the_runs_one_may_see(tenants: History) -> None:
    assert tenants.run_ids("a", among=ETL) == [MINE]
    assert tenants.run_ids("a") == [MINE, THEIRS, ALSO_THEIRS]
    assert tenants.run_ids("ac", among=ETL) == tenants.run_ids("ad", among=ETL) == []
    assert tenants.run_ids("ab", among=frozenset()) == []  # no grant: nothing


def test_a_hidden_run_is_not_found_and_does_not_make_a_prefix_ambiguous(tenants: History) -> None:
    assert tenants.run(THEIRS, among=ETL) is None
    assert tenants.run(THEIRS, after="", limit=10, among=ETL) is None
    assert tenants.run(ALSO_THEIRS, among=ACME) is None
    found = tenants.run("ab", limit=10, among=ACME)  # two runs have it: one is acme's
    assert found is not None
    assert found.run.run_id == MINE
    with pytest.raises(ValueError, match="several runs"):
        tenants.run("ab", limit=10)
    mine = tenants.run(MINE, limit=1, counts=False, among=ETL)
    assert mine is not None
    assert mine.run.project_id == "etl"


def test_log_lines_and_log_searches_only_of_runs_one_may_see(tenants: History) -> None:
    assert [ln.message for ln in tenants.log_lines(MINE, among=ETL)] == [
        "the secret word",
        "load line 2",
    ]
    assert tenants.log_lines(THEIRS, among=ETL) == tenants.log_lines(UNKNOWN, among=ETL) == []
    assert len(tenants.log_lines(THEIRS)) == 2
    assert tenants.runs_logging("secret", among=ETL) == [MINE]
    assert set(tenants.runs_logging("secret")) == {MINE, THEIRS, ALSO_THEIRS}
    assert tenants.runs_logging("secret", among=frozenset({("globex", "web")})) != []


def test_a_hidden_run_costs_the_queries_an_unknown_one_does(
    tenants: History, statements: list[str]
) -> None:
    def cost(run_id: str) -> list[str]:
        statements.clear()
        tenants.run(run_id, limit=10, among=ETL)
        tenants.run(run_id, after="", limit=10, among=ETL)
        tenants.run_ids(run_id[:3], among=ETL)
        tenants.log_lines(run_id, among=ETL)
        return list(statements)

    hidden, unknown = cost(THEIRS), cost(UNKNOWN)
    assert hidden == unknown  # the same statements, none more (the ids are parameters)
    assert len(cost(MINE)) > len(hidden)  # a run one sees reads its tasks too
