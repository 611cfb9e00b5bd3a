"""OpenTelemetry traces of runs (``cascade-runtime[otel]``): a span per run, one per task attempt.

Everything OpenTelemetry is here, imported only when a run starts, and only if
``opentelemetry-api`` is installed: without it, or without an SDK (the API's
tracers then make non-recording spans), :func:`start_run` returns ``None`` and
the engine does no tracing work per task at all. Every call into OpenTelemetry
is guarded: a broken span processor or exporter costs the trace, never the run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cascade.connector_kit import RateLimitedLogger

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

__all__ = [
    "ATTEMPT_STATE",
    "ORG_ID",
    "PROJECT_ID",
    "RUN_ID",
    "RUN_STATUS",
    "RUN_TASKS",
    "TASK_ATTEMPT",
    "TASK_ID",
    "AttemptSpan",
    "AttemptState",
    "RunTrace",
    "start_run",
]

_log = RateLimitedLogger(logging.getLogger("cascade.runtime.tracing"))
_T = TypeVar("_T")

RUN_SPAN = "cascade.run"
# Span attributes, in Cascade's own namespace.
RUN_ID = "cascade.run.id"
RUN_TASKS = "cascade.run.tasks"
RUN_STATUS = "cascade.run.status"
ORG_ID = "cascade.org.id"
PROJECT_ID = "cascade.project.id"
TASK_ID = "cascade.task.id"
TASK_ATTEMPT = "cascade.task.attempt"
ATTEMPT_STATE = "cascade.task.state"

AttemptState = Literal["COMPLETED", "RETRYING", "FAILED", "CANCELLED"]


def _broken(what: str) -> None:
    _log.log(logging.WARNING, what, "tracing: %s failed (the run goes on)", what, exc_info=True)


def start_run(
    run_id: str,
    task_count: int,
    org_id: str,
    project_id: str,
    tracer_provider: TracerProvider | None = None,
) -> RunTrace | None:
    """Start the span of a run, a child of the caller's current span; ``None`` if not traced.

    Not traced: opentelemetry-api is not importable, or the tracer (from
    ``tracer_provider``, by default the global one) makes non-recording spans
    (no SDK configured, or its sampler dropped the run).
    """
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    try:
        if tracer_provider is None:
            tracer = trace.get_tracer("cascade.runtime")
        else:
            tracer = tracer_provider.get_tracer("cascade.runtime")
        span = tracer.start_span(
            RUN_SPAN,
            kind=trace.SpanKind.INTERNAL,
            attributes={
                RUN_ID: run_id,
                RUN_TASKS: task_count,
                ORG_ID: org_id,
                PROJECT_ID: project_id,
            },
        )
        if not span.is_recording():
            return None
        return RunTrace(tracer, span, trace.set_span_in_context(span))
    except Exception:
        _broken("starting the run's span")
        return None


class RunTrace:
    """A run's recording span; makes the span of each task attempt, its children."""

    __slots__ = ("_context", "_span", "_tracer", "trace_id")

    def __init__(self, tracer: Tracer, span: Span, context: Context) -> None:
        self._tracer = tracer
        self._span = span
        self._context = context
        self.trace_id: str = format(span.get_span_context().trace_id, "032x")
        """The run's trace id, as W3C Trace Context and the telemetry write it."""

    def attempt(self, run_id: str, task_id: str, task_name: str, attempt: int) -> AttemptSpan:
        """Start the span of one attempt of a task, named for the task."""
        try:
            from opentelemetry import trace

            span = self._tracer.start_span(
                task_name,
                context=self._context,
                attributes={RUN_ID: run_id, TASK_ID: task_id, TASK_ATTEMPT: attempt},
            )
            return AttemptSpan(span, trace.set_span_in_context(span, self._context))
        except Exception:
            _broken("starting a task attempt's span")
            return AttemptSpan(None, None)

    def end(
        self, status: Literal["Succeeded", "Failed", "Cancelled"], error: BaseException | None
    ) -> None:
        """End the run's span with the run's ``status`` and what ended it, if anything did."""
        _finish(self._span, RUN_STATUS, status, error)


class AttemptSpan:
    """The span of one task attempt: current while the task's code runs, in its task or thread."""

    __slots__ = ("_context", "_span")

    def __init__(self, span: Span | None, context: Context | None) -> None:
        self._span = span
        self._context = context

    @property
    def span_id(self) -> str | None:
        """The span's id as W3C Trace Context writes it (16 hex digits), if it records."""
        if self._span is None:
            return None
        try:
            return format(self._span.get_span_context().span_id, "016x")
        except Exception:
            return None

    async def run_async(
        self, fn: Callable[..., Awaitable[_T]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _T:
        """Await ``fn(*args, **kwargs)`` with this span current (in the asyncio task's context)."""
        token = _attach(self._context)
        try:
            return await fn(*args, **kwargs)
        finally:
            _detach(token)

    def bind(self, fn: Callable[[], _T]) -> Callable[[], _T]:
        """``fn``, made to run with this span current in whatever thread calls it."""
        context = self._context

        def traced() -> _T:
            token = _attach(context)
            try:
                return fn()
            finally:
                _detach(token)

        return traced

    def ran_on(self, worker: str) -> None:
        """Say where the attempt's body ran, as its executor names the worker (a Dask
        worker's address): ``cascade.task.worker``."""
        if self._span is None:
            return
        try:
            self._span.set_attribute("cascade.task.worker", worker)
        except Exception:
            _broken("setting an attribute")

    def end(self, state: AttemptState, error: BaseException | None) -> None:
        """End the span with the attempt's final ``state`` and its error, if it had one."""
        _finish(self._span, ATTEMPT_STATE, state, error)


def _attach(context: Context | None) -> Token[Context] | None:
    if context is None:
        return None
    try:
        from opentelemetry import context as otel_context

        return otel_context.attach(context)
    except Exception:
        _broken("making a span current")
        return None


def _detach(token: Token[Context] | None) -> None:
    if token is None:
        return
    try:
        from opentelemetry import context as otel_context

        otel_context.detach(token)
    except Exception:
        _broken("restoring the context")


def _finish(span: Span | None, key: str, value: str, error: BaseException | None) -> None:
    """Set the outcome ``key=value``, record ``error`` as an exception with status ERROR, end."""
    if span is None:
        return
    try:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute(key, value)
        if error is not None:
            span.record_exception(error, escaped=True)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
    except Exception:
        _broken("ending a span")
