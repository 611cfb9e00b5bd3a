"""``cs.<name>`` through the ``cascade.providers`` entry points: the mechanism, a third
party's provider package, and the providers cascade-runtime ships."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import cascade.runtime as cs
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Constraint, constraint_topic
from cascade.runtime import (
    Engine,
    Event,
    ProviderMissing,
    TaskBlocked,
    TaskEvent,
    TaskFailedError,
    task,
)
from cascade.runtime._providers import Providers  # a fresh registry per test

# A provider package written for the Cascade engine, with its one import line changed:
# classes with a ``name`` and ``create_factory()`` under the ``cascade.providers`` group.
PLUGIN = "cascade_demo_plugin"
PLUGIN_SOURCE = """
from cascade.runtime import task

@task(name="demo.shout")
def _shout(text):
    return text.upper() + "!"

class ShoutProvider:
    name = "demo.shout"

    def create_factory(self):
        return _shout

class BrokenProvider:
    name = "demo.broken"

    def create_factory(self):
        raise RuntimeError("no backend configured")

class NotAProvider:
    pass

class RenamedProvider:
    name = "demo.renamed"

    def create_factory(self):
        return _shout
"""
PLUGIN_ENTRY_POINTS = f"""
[cascade.providers]
demo.shout = {PLUGIN}:ShoutProvider
demo.broken = {PLUGIN}:BrokenProvider
demo.nothing = {PLUGIN}:NotAProvider
demo.gone = {PLUGIN}_no_such_module:Provider
demo.alias = {PLUGIN}:RenamedProvider
"""


def install_plugin(where: Path) -> Path:
    """The demo package as an installed distribution (its dist-info) in ``where``."""
    (where / f"{PLUGIN}.py").write_text(PLUGIN_SOURCE, encoding="utf-8")
    info = where / f"{PLUGIN}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PLUGIN}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(PLUGIN_ENTRY_POINTS, encoding="utf-8")
    return where


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The demo provider package installed on ``sys.path`` for this test."""
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path)))
    yield tmp_path
    sys.modules.pop(PLUGIN, None)


# --- the mechanism ---


def test_a_third_party_package_adds_cs_names_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """A provider package found by its entry points is ``cs.<name>``, read only when asked."""
    install_plugin(tmp_path)
    program = textwrap.dedent(f"""
        import sys
        import cascade.runtime as cs
        print("metadata read at import:", "importlib.metadata" in sys.modules)
        print("plugin loaded at import:", {PLUGIN!r} in sys.modules)
        print(cs.run(cs.demo.shout("hello")))
        print(cs.format is cs.format, cs.shell.name)
    """)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "metadata read at import: False",
        "plugin loaded at import: False",
        "HELLO!",
        "True shell",
    ]


def test_dotted_names_are_namespaces(plugin: Path) -> None:
    """``demo`` is a namespace of the providers below it; each provider is its factory."""
    providers = Providers()
    demo = providers.get("demo")
    assert demo.shout is providers.get("demo.shout")
    assert "shout" in dir(demo)
    assert cs.run(demo.shout("x")) == "X!"
    nested = providers.get("io")
    assert nested.local.read_text.name == "io.local.read_text"


def test_a_failing_provider_is_logged_and_skipped(
    plugin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Providers that raise, are not providers or cannot be imported are logged and left
    out; the others still load, and asking for a failed one says why."""
    providers = Providers()
    with caplog.at_level(logging.WARNING, "cascade.runtime.providers"):
        with pytest.raises(ProviderMissing, match="no backend configured") as raised:
            providers.get("demo.broken")
        assert isinstance(raised.value.__cause__, RuntimeError)
        with pytest.raises(ProviderMissing, match="is not a provider"):
            providers.get("demo.nothing")
        with pytest.raises(ProviderMissing, match="No module named"):
            providers.get("demo.gone")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for name in ("demo.broken", "demo.nothing", "demo.gone"):
        assert f"the provider {name!r}" in logged
    assert cs.run(providers.get("demo.shout")("ok")) == "OK!"
    assert "demo.broken" not in providers.names()
    assert "demo.shout" in providers.names()


def test_a_provider_is_found_by_its_own_name(plugin: Path) -> None:
    """As in the Cascade engine, a provider is ``cs.<its name>`` whatever its entry point's."""
    providers = Providers()
    assert providers.get("demo.renamed") is providers.get("demo.shout")


def test_a_missing_name_is_an_attribute_error_naming_it_and_the_installed() -> None:
    """``cs.nope`` says it is missing and which providers are installed; ``hasattr`` works."""
    with pytest.raises(AttributeError) as raised:
        cs.no_such_provider  # noqa: B018
    assert isinstance(raised.value, ProviderMissing)
    message = str(raised.value)
    assert "'no_such_provider'" in message
    assert "read.text" in message
    assert "format" in message
    assert raised.value.installed == Providers().names()
    assert not hasattr(cs, "no_such_provider")
    assert getattr(cs, "no_such_provider", 7) == 7
    with pytest.raises(ProviderMissing, match=r"'read\.nope'"):
        cs.read.nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError) as dunder:
        cs.__no_such_dunder__  # noqa: B018
    assert not isinstance(dunder.value, ProviderMissing)  # probes read no entry points


def test_the_entry_points_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry reads the group once: a package installed after is not seen by it."""
    providers = Providers()
    assert providers.get("format").name == "format"
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path)))
    with pytest.raises(ProviderMissing):
        providers.get("demo.shout")
    assert Providers().get("demo.shout").name == "demo.shout"
    sys.modules.pop(PLUGIN, None)


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Jinja2 (PyYAML, httpx2, s3fs), asking for ``template`` (``load_yaml``,
    ``http.get``, ``io.s3.read_text``) names the extra."""
    for module in ("jinja2", "yaml", "httpx2", "s3fs"):
        monkeypatch.setitem(sys.modules, module, None)
    providers = Providers()
    with pytest.raises(ProviderMissing, match=r"pip install 'cascade-runtime\[template\]'"):
        providers.get("template")
    with pytest.raises(ProviderMissing, match=r"pip install 'cascade-runtime\[yaml\]'"):
        providers.get("load_yaml")
    with pytest.raises(ProviderMissing, match=r"pip install 'cascade-runtime\[http\]'"):
        providers.get("http.get")
    with pytest.raises(ProviderMissing, match=r"pip install 'cascade-runtime\[s3\]'"):
        providers.get("io.s3.read_text")
    assert providers.get("format").name == "format"


# --- the shipped providers, as the Cascade engine's tests and guides have them ---


@task
def later(value: object) -> object:
    return value


def test_each_provider_is_a_task_named_as_the_provider() -> None:
    """``cs.read.text`` is the task ``read.text``; ``cs.shell`` is still the public one;
    ``cs.sql`` a function, as the Cascade engine's, that makes the task ``sql``."""
    names = [n for n in Providers().names() if n not in ("shell", "sql")]
    for name in names:
        factory = Providers().get(name)
        assert isinstance(factory, cs.Task)
        assert factory.name == name
    assert Providers().get("shell") is cs.shell
    assert not isinstance(
        Providers().get("sql"), cs.Task
    )  # makes the task sql (test_providers_sql)


def test_format_and_dict() -> None:
    """``format`` is ``str.format`` with lazy arguments; ``dict`` the keyword arguments."""
    assert cs.run(cs.format("Hello, {name}!", name=later("World"))) == "Hello, World!"
    assert cs.run(cs.format("{}, {}", later("first"), "second")) == "first, second"
    assert cs.run(cs.dict(fixed=1, lazy=later("two"))) == {"fixed": 1, "lazy": "two"}


async def test_wait_waits_without_holding_back_the_rest() -> None:
    """``wait(t)`` takes ``t`` seconds (a lazy ``t`` too) while other tasks finish."""
    ended: list[str] = []
    engine = Engine()
    engine.events.subscribe(
        lambda e: (
            ended.append(e.task_name)
            if isinstance(e, TaskEvent) and e.state == "COMPLETED"
            else None
        )
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await engine.run([cs.wait(later(0.2)), later("now")]) == [None, "now"]
    assert loop.time() - began >= 0.2
    assert ended.index("later") < ended.index("wait")


def test_load_yaml_and_lookup(tmp_path: Path) -> None:
    """``load_yaml`` parses a file; ``lookup`` follows dotted keys through dicts and lists."""
    path = tmp_path / "config.yml"
    path.write_text(
        "project:\n  name: Cascade\n  version: 1.0.0\nservers:\n  - host: a\n  - host: b\n",
        encoding="utf-8",
    )
    config = cs.load_yaml(str(path))
    assert cs.run(cs.lookup(source=config, key="project.name")) == "Cascade"
    assert cs.run(cs.lookup(config, "servers.1.host")) == "b"
    assert cs.run(cs.lookup(source={"a": {"b": 10}}, key="a.b")) == 10


@pytest.mark.parametrize(
    ("source", "key", "error"),
    [({"a": 1}, "b", KeyError), ({"a": 1}, "a.b", TypeError), ({"a": [1]}, "a.4", KeyError)],
)
def test_lookup_says_which_step_is_missing(source: object, key: str, error: type) -> None:
    """A missing key or index is a ``KeyError``, a step into a plain value a ``TypeError``."""
    with pytest.raises(TaskFailedError) as raised:
        cs.run(cs.lookup(source=source, key=key))
    assert isinstance(raised.value.exception, error)
    assert raised.value.task_name == "lookup"


def test_a_template_from_a_param_cannot_reach_pythons_internals() -> None:
    """A template string is code: one a param gives is rendered in Jinja2's sandbox, so
    walking to a class's subclasses (the way out of a template) fails the task."""
    hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(cs.TaskFailedError) as raised:
        cs.run(cs.template(cs.Param("text", default=hostile), {}))
    assert "unsafe" in str(raised.value.__cause__)


def test_template_renders_with_a_context_and_keywords() -> None:
    """``template`` renders Jinja2 with lazy values; keywords win over the context."""
    rendered = cs.template("{{ who }} is {{ what }}.", {"who": "x", "what": "y"}, who=later("A"))
    assert cs.run(rendered) == "A is y."


def test_files_read_write_and_exist(tmp_path: Path) -> None:
    """``write.*`` writes, ``read.*`` reads, ``fs.exists`` says; ``io.local.*`` the same."""
    text, data = tmp_path / "a.txt", tmp_path / "b.bin"
    cs.run(cs.write.text(str(text), later("hello cascade")))
    assert text.read_text(encoding="utf-8") == "hello cascade"
    assert cs.run(cs.read.text(later(str(text)))) == "hello cascade"
    cs.run(cs.write.bytes(str(data), b"\x01\x02"))
    assert cs.run(cs.read.bytes(str(data))) == b"\x01\x02"
    assert cs.run([cs.fs.exists(str(text)), cs.fs.exists(str(text) + ".no")]) == [True, False]
    local = cs.io.local
    cs.run(local.write_text(str(text), "again"))
    cs.run(local.write_bytes(str(data), b"\x03"))
    assert cs.run([local.read_text(str(text)), local.read_bytes(str(data))]) == ["again", b"\x03"]
    assert cs.run([local.exists(str(data)), local.exists(str(tmp_path / "no"))]) == [True, False]


def test_stdout_and_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``io.stdout.write`` prints a line; ``io.stdin.read_line`` reads one after its arguments."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("Cascade User\nnext\n"))
    prompt = cs.io.stdout.write("Your name?")
    answer = cs.io.stdin.read_line(prompt)
    assert cs.run(cs.format("Hello, {}!", answer)) == "Hello, Cascade User!"
    assert capsys.readouterr().out == "Your name?\n"


# --- steered like any task ---


async def test_a_pause_of_a_provider_holds_its_task() -> None:
    """``task:read.text`` paused over the broker holds ``cs.read.text`` until cleared."""
    broker = InMemoryBroker()
    controller = InMemoryConnector(broker, presence=False)
    await controller.connect()
    events: list[Event] = []
    blocked = asyncio.Event()

    def record(event: Event) -> None:
        events.append(event)
        if isinstance(event, TaskBlocked) and event.task_name == "read.text":
            blocked.set()

    pause = Constraint.pause("task:read.text")
    topic = constraint_topic(pause.scope, pause.type)
    await controller.publish(topic, pause, qos=1, retain=True)
    await broker.idle()
    engine = Engine(InMemoryConnector(broker, presence=False), heartbeat_interval=None)
    engine.events.subscribe(record)
    path = Path(__file__)
    text = path.read_text(encoding="utf-8")  # noqa: ASYNC240  # before the run, not during it
    run = asyncio.create_task(engine.run([cs.read.text(str(path)), cs.format("{}", 1)]))
    await asyncio.wait_for(blocked.wait(), 10)
    states = [e.state for e in events if isinstance(e, TaskEvent) and e.task_name == "read.text"]
    assert states == ["BLOCKED"]
    await controller.publish(topic, b"", qos=1, retain=True)
    await broker.idle()
    assert await run == [text, "1"]
    states = [e.state for e in events if isinstance(e, TaskEvent) and e.task_name == "read.text"]
    assert states == ["BLOCKED", "RUNNING", "COMPLETED"]
    await controller.disconnect()
