"""OpenTelemetry traces: a span per run, a child per task attempt, joined to the caller's trace."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanContext, StatusCode

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.runtime import Engine, RunCancelledError, TaskFailedError, TaskRunning, task
from cascade.runtime._tracing import start_run
from cascade.runtime.testing import EventRecorder


class Traced:
    """A tracer provider that keeps every finished span in memory."""

    def __init__(self, **provider: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(**provider)
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> Sequence[ReadableSpan]:
        return self.exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]

    def run_span(self) -> ReadableSpan:
        (run,) = self.named("cascade.run")
        return run


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


@task
async def fetch(i: int) -> int:
    return i


@task(name="total")
def add_up(values: list[int]) -> int:
    return sum(values)


async def test_a_run_is_a_span_and_each_task_attempt_a_child_named_for_the_task() -> None:
    """The run's span holds one child per task, with the run id, task id, attempt and state."""
    traced = Traced()
    engine = Engine(tracer_provider=traced.provider, org_id="acme", project_id="shop")
    leaves = [fetch(i) for i in range(3)]
    total = add_up(leaves)
    assert await engine.run(total) == 3
    run = traced.run_span()
    run_id = attrs(run)["cascade.run.id"]
    assert attrs(run) == {
        "cascade.run.id": run_id,
        "cascade.run.tasks": 4,
        "cascade.org.id": "acme",
        "cascade.project.id": "shop",
        "cascade.run.status": "Succeeded",
    }
    assert run.parent is None
    assert run.status.status_code is StatusCode.UNSET
    tasks = [s for s in traced.spans() if s is not run]
    assert sorted(s.name for s in tasks) == ["fetch", "fetch", "fetch", "total"]
    assert run.context is not None
    for span in tasks:
        assert parent_id(span) == run.context.span_id
        assert span.context is not None
        assert span.context.trace_id == run.context.trace_id
        assert attrs(span)["cascade.run.id"] == run_id
        assert attrs(span)["cascade.task.attempt"] == 1
        assert attrs(span)["cascade.task.state"] == "COMPLETED"
    assert {attrs(s)["cascade.task.id"] for s in tasks} == {
        lazy.task_id for lazy in [*leaves, total]
    }
    (total_span,) = traced.named("total")
    assert all(s.end_time is not None for s in tasks)
    assert max(s.end_time or 0 for s in traced.named("fetch")) <= (total_span.start_time or 0)


async def test_a_run_started_inside_a_traced_request_is_part_of_its_trace() -> None:
    """The run's span is a child of the caller's current span."""
    traced = Traced()
    tracer = traced.provider.get_tracer("web")
    with tracer.start_as_current_span("GET /orders") as request:
        await Engine(tracer_provider=traced.provider).run(fetch(1))
    run = traced.run_span()
    assert parent_id(run) == request.get_span_context().span_id
    assert run.context is not None
    assert run.context.trace_id == request.get_span_context().trace_id


async def test_the_task_span_is_current_in_coroutines_and_in_threads() -> None:
    """Inside a coroutine task and inside a plain function (in a thread) the current span is
    the attempt's own, so the task's own spans nest under it."""
    traced = Traced()
    seen: dict[str, tuple[SpanContext, str]] = {}

    @task
    async def in_loop() -> int:
        seen["in_loop"] = (trace.get_current_span().get_span_context(), "loop")
        with traced.provider.get_tracer("app").start_as_current_span("query"):
            await asyncio.sleep(0)
        return 1

    @task
    def in_thread() -> int:
        where = threading.current_thread().name
        seen["in_thread"] = (trace.get_current_span().get_span_context(), where)
        return 2

    await Engine(tracer_provider=traced.provider).run([in_loop(), in_thread()])
    for name in ("in_loop", "in_thread"):
        (span,) = traced.named(name)
        assert span.context is not None
        assert seen[name][0].span_id == span.context.span_id
    assert seen["in_thread"][1].startswith("cascade-task")
    (query,) = traced.named("query")
    (loop_span,) = traced.named("in_loop")
    assert loop_span.context is not None
    assert parent_id(query) == loop_span.context.span_id


def test_a_pool_thread_is_left_without_the_span_after_the_task() -> None:
    """The attempt's context is attached in the thread for the call only, then detached."""
    traced = Traced()
    tracing = start_run("r", 1, "o", "p", traced.provider)
    assert tracing is not None
    attempt = tracing.attempt("r", "t-1", "t", 1)
    with ThreadPoolExecutor(max_workers=1) as pool:
        inside = pool.submit(attempt.bind(lambda: trace.get_current_span().is_recording()))
        after = pool.submit(lambda: trace.get_current_span().is_recording())
        assert (inside.result(), after.result()) == (True, False)
    attempt.end("COMPLETED", None)
    tracing.end("Succeeded", None)
    assert sorted(s.name for s in traced.spans()) == ["cascade.run", "t"]


async def test_each_retry_is_a_span_of_its_own_with_its_error() -> None:
    """Every attempt is a span: the failed ones RETRYING with status ERROR and the exception."""
    traced = Traced()
    calls = 0

    @task
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError(f"refused {calls}")
        return "ok"

    await Engine(tracer_provider=traced.provider).run(flaky.with_retry(3)())
    spans = sorted(traced.named("flaky"), key=lambda s: attrs(s)["cascade.task.attempt"])
    assert [attrs(s)["cascade.task.attempt"] for s in spans] == [1, 2, 3]
    assert [attrs(s)["cascade.task.state"] for s in spans] == ["RETRYING", "RETRYING", "COMPLETED"]
    assert [s.status.status_code for s in spans] == [StatusCode.ERROR] * 2 + [StatusCode.UNSET]
    assert spans[0].status.description == "ConnectionError: refused 1"
    (event,) = spans[0].events
    assert event.name == "exception"
    assert dict(event.attributes or {})["exception.type"] == "ConnectionError"
    assert spans[2].events == ()
    assert len({attrs(s)["cascade.task.id"] for s in spans}) == 1


async def test_a_failed_task_and_its_run_are_errors() -> None:
    """A task failing on its last attempt: its span FAILED with the exception, the run's Failed."""
    traced = Traced()

    @task
    def broken() -> int:
        raise KeyError("missing")

    with pytest.raises(TaskFailedError):
        await Engine(tracer_provider=traced.provider).run(fetch(broken()))
    (span,) = traced.named("broken")
    assert attrs(span)["cascade.task.state"] == "FAILED"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "KeyError: 'missing'"
    assert dict(span.events[0].attributes or {})["exception.type"] == "KeyError"
    assert traced.named("fetch") == []  # skipped: it never ran
    run = traced.run_span()
    assert attrs(run)["cascade.run.status"] == "Failed"
    assert run.status.status_code is StatusCode.ERROR
    assert str(dict(run.events[0].attributes or {})["exception.type"]).endswith("TaskFailedError")


async def test_a_cancelled_run_ends_its_spans_as_cancelled() -> None:
    """Cancel: the running attempt's span is CANCELLED, the run's Cancelled with the error."""
    traced = Traced()

    @task
    async def forever() -> int:
        await asyncio.Event().wait()
        return 0

    engine = Engine(tracer_provider=traced.provider)
    recorder = EventRecorder()
    engine.events.subscribe(recorder)
    run = asyncio.create_task(engine.run(forever()))
    await recorder.until(lambda: recorder.names(TaskRunning) == ["forever"])
    (started,) = {e.run_id for e in recorder.events}
    engine.cancel(started, issued_by="alice")
    with pytest.raises(RunCancelledError):
        await asyncio.wait_for(run, 5)
    (span,) = traced.named("forever")
    assert attrs(span)["cascade.task.state"] == "CANCELLED"
    assert span.status.status_code is StatusCode.ERROR
    run_span = traced.run_span()
    assert attrs(run_span)["cascade.run.status"] == "Cancelled"
    assert run_span.status.description is not None
    assert run_span.status.description.startswith("RunCancelledError: ")


def _telemetry(broker: InMemoryBroker) -> list[dict[str, Any]]:
    return [json.loads(m.raw) for m in broker.history if "/telemetry/" in m.topic]


async def test_the_trace_id_is_in_every_envelope_of_a_traced_run() -> None:
    """Events and heartbeats of a traced run carry its trace id; an untraced run's do not."""
    traced = Traced()
    broker = InMemoryBroker()
    connector = InMemoryConnector(broker, presence=False)
    engine = Engine(connector, tracer_provider=traced.provider, heartbeat_interval=60)
    await engine.run([fetch(1), add_up([fetch(2)])])
    run = traced.run_span()
    assert run.context is not None
    trace_id = format(run.context.trace_id, "032x")
    envelopes = _telemetry(broker)
    assert {e["body"]["type"] for e in envelopes} == {
        "LifecycleEvent",
        "TaskStateEvent",
        "Heartbeat",
    }
    assert {e.get("trace_id") for e in envelopes} == {trace_id}
    broker.history.clear()
    await Engine(connector, heartbeat_interval=None).run(fetch(3))  # the global provider: no SDK
    assert [e for e in _telemetry(broker) if "trace_id" in e] == []


async def test_without_an_sdk_nothing_is_traced() -> None:
    """The API alone (the global no-op provider) or a sampler that drops the run: no trace work,
    no trace id."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    for provider in (None, trace.NoOpTracerProvider(), Traced(sampler=ALWAYS_OFF).provider):
        broker = InMemoryBroker()
        connector = InMemoryConnector(broker, presence=False)
        engine = Engine(connector, tracer_provider=provider, heartbeat_interval=None)
        assert await engine.run(fetch(7)) == 7
        assert not any("trace_id" in e for e in _telemetry(broker))


async def test_the_engine_works_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    """With opentelemetry not importable the engine runs as it did before tracing existed."""
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError):
        import opentelemetry.trace  # noqa: F401
    traced = Traced()  # made before: it would trace if anything reached it
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, presence=False), tracer_provider=traced.provider)
    assert await engine.run(add_up([fetch(1), fetch(2)])) == 3
    assert traced.spans() == ()
    assert not any("trace_id" in e for e in _telemetry(broker))


class Exploding(SpanProcessor):
    """A span processor that raises wherever it is called."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("on_start broke")

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("on_end broke")


class FailingExporter(InMemorySpanExporter):
    """An exporter whose every export raises."""

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        raise ConnectionError("collector unreachable")


@pytest.mark.parametrize("processor", ["exploding processor", "failing exporter"])
async def test_a_broken_span_pipeline_costs_the_trace_not_the_run(
    processor: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A span processor or an exporter that raises never fails a run nor a task."""
    provider = TracerProvider()
    if processor == "exploding processor":
        provider.add_span_processor(Exploding())
    else:
        provider.add_span_processor(SimpleSpanProcessor(FailingExporter()))

    @task
    def sync_task(x: int) -> int:
        return x + 1

    engine = Engine(tracer_provider=provider)
    assert await engine.run(sync_task.with_retry(2)(fetch(1))) == 2
    assert "broke" in caplog.text or "collector unreachable" in caplog.text


def test_importing_the_runtime_does_not_import_opentelemetry() -> None:
    """OpenTelemetry is imported when a run starts, not with ``cascade.runtime``."""
    code = (
        "import sys, cascade.runtime; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
