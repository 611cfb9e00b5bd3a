"""``Env`` reads an environment variable when the run gets there; ``override_resource``
puts a test's fake in place of an engine's resource for a ``with`` block, then the real one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import cascade.runtime as cs
from cascade.runtime import Engine, inject, resource, task


def test_env_reads_the_variable_when_the_run_gets_there(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set: its value; unset: the default; each run reads it afresh; the task is ``env``."""
    region = cs.Env("CASCADE_TEST_REGION", default="eu")
    greeting = cs.format("region {}", region)
    monkeypatch.delenv("CASCADE_TEST_REGION", raising=False)
    assert cs.run(greeting) == "region eu"
    monkeypatch.setenv("CASCADE_TEST_REGION", "us")
    assert cs.run(greeting) == "region us"
    assert cs.run(cs.Env("CASCADE_TEST_UNSET_VARIABLE")) is None
    assert region.name == "env"
    with pytest.raises(cs.ParamError, match="non-empty str"):
        cs.Env("")


@resource
def database() -> Iterator[str]:
    yield "production"


@task
def which(db: str = inject("database")) -> str:
    return db


def test_override_resource_for_a_block_then_the_real_one() -> None:
    """In the block the fake's value; after it (even after a failure) the real one's."""

    @resource
    def fake_database() -> Iterator[str]:
        yield "fake"

    def plain_generator() -> Iterator[str]:
        yield "plain"

    engine = Engine(resources=[database])
    with cs.override_resource(engine, "database", fake_database) as used:
        assert asyncio.run(engine.run(which())) == "fake"
        assert engine.resources["database"] is used
    assert asyncio.run(engine.run(which())) == "production"
    seen: list[str] = []

    def fails_inside() -> None:
        with cs.override_resource(engine, "database", plain_generator):
            seen.append(asyncio.run(engine.run(which())))
            raise RuntimeError("the test failed inside")

    with pytest.raises(RuntimeError, match="failed inside"):
        fails_inside()
    assert seen == ["plain"]
    assert engine.resources["database"] is database


def test_override_of_a_resource_the_engine_has_not_is_refused() -> None:
    """Overriding a name nothing registers is a ``ResourceMissing`` naming what is."""
    engine = Engine(resources=[database])
    overriding = cs.override_resource(engine, "db", database)
    with pytest.raises(cs.ResourceMissing, match=r"no resource 'db'.*database"):
        overriding.__enter__()
