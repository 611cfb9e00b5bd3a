"""What importing the runtime loads: ``import cascade.runtime`` loads no engine, and what a plain
run touches (``cs.task``, ``cs.run``, ``cs.Engine``) loads no serving, schedules, Dask or
results store (issue 93). A test of what is imported, not of time: ``benchmarks/bench_import.py``
(``nox -s bench``) measures the time."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cascade.runtime as cs

# What a run that serves nothing, schedules nothing and keeps no results never needs.
NOT_FOR_A_PLAIN_RUN = (
    "croniter",
    "distributed",
    "dask",
    "fsspec",
    "cascade.runtime.serve._serve",
    "cascade.runtime.serve._schedule",
    "cascade.runtime.executors._dask",
)


def _imported(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    said = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(said.stdout.split())


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_importing_the_runtime_loads_no_engine() -> None:
    """``import cascade.runtime`` loads none of its modules but the package: each public name
    is imported when first used."""
    modules = _imported("import cascade.runtime")
    assert sorted(m for m in modules if m.startswith("cascade.runtime.")) == []
    assert _loaded(modules, ("asyncio", "msgspec", *NOT_FOR_A_PLAIN_RUN)) == []


def test_a_plain_run_loads_no_serving_schedules_dask_or_store() -> None:
    """A script's ``cs.task``, ``cs.run`` and ``cs.Engine`` load the engine and nothing a plain
    run does not use; the names listed are what serving and a Dask executor do load."""
    modules = _imported("import cascade.runtime as cs\ncs.task, cs.run, cs.Engine")
    assert "cascade.runtime._engine" in modules
    assert _loaded(modules, NOT_FOR_A_PLAIN_RUN) == []
    served = _imported(
        "import cascade.runtime as cs\n"
        "from cascade.runtime.serve._serve import Server\n"
        "cs.Schedule(cron='0 * * * *'), cs.DaskExecutor"
    )
    assert set(_loaded(served, NOT_FOR_A_PLAIN_RUN)) >= {
        "croniter",
        "cascade.runtime.serve._serve",
        "cascade.runtime.serve._schedule",
        "cascade.runtime.executors._dask",
    }


def test_every_public_name_is_there() -> None:
    """Each name of ``__all__`` is found (from its module, on first use), and ``dir()`` lists
    them before any is used; a provider's name still finds the provider."""
    assert set(cs.__all__) <= set(dir(cs))
    for name in cs.__all__:
        assert getattr(cs, name) is not None, name
    assert cs.format.name == "format"
    with pytest.raises(AttributeError):
        cs.__no_such_probe__  # noqa: B018
