"""What tasks log is forwarded, tagged with its task and attempt, within its budgets."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import decode_envelope
from cascade.interfaces.logs import LogBatch, decode_log_batch
from cascade.runtime import Engine, LogForwarding, RetryPolicy, task

etl = logging.getLogger("etl")


@pytest.fixture(autouse=True)
def _etl_logs_everything() -> Iterator[None]:
    """What the application's logging lets through is what is forwarded: here, everything."""
    etl.setLevel(logging.DEBUG)
    yield
    etl.setLevel(logging.NOTSET)


def _batches(broker: InMemoryBroker) -> list[LogBatch]:
    return [decode_log_batch(m.raw) for m in broker.history if "/logs/" in m.topic]


def _lines(broker: InMemoryBroker) -> list[tuple[str, int, int, str, str]]:
    """(task name, attempt, n, level, message) of every forwarded line, in order."""
    return [(line.task_name, line.attempt, line.n, line.level, line.message)
            for batch in _batches(broker) for line in batch.lines]  # fmt: skip


@task
async def extract() -> int:
    etl.info("extracting %d rows", 3)
    await asyncio.sleep(0)
    etl.debug("done extracting")
    return 3


@task
def transform(rows: int) -> int:
    etl.warning("transforming %d rows in a thread", rows)
    return rows


async def test_coroutine_and_thread_tasks_lines_are_tagged_with_their_task() -> None:
    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker, source_id="host-1"), org_id="acme", project_id="p")
    etl.info("outside any task: not forwarded")
    assert await engine.run(transform(extract())) == 3
    assert _lines(broker) == [
        ("extract", 1, 1, "INFO", "extracting 3 rows"),  # its DEBUG line: below INFO
        ("transform", 1, 1, "WARNING", "transforming 3 rows in a thread"),
    ]
    batch = _batches(broker)[0]
    assert (batch.org_id, batch.project_id, batch.source, batch.seq) == ("acme", "p", "host-1", 1)
    assert batch.lines[0].logger == "etl"
    assert engine.stats.log_lines_sent == 2
    assert engine.stats.log_lines_dropped == 0


@task
async def attempt_tags_tracked() -> list[bool]:
    """Whether the collector tracks what this attempt's context tags its lines with."""
    context = contextvars.copy_context()
    return [gc.is_tracked(tag) for var, tag in context.items() if var.name == "cascade_task_logs"]


async def test_an_attempts_tag_is_not_tracked_by_the_garbage_collector() -> None:
    # one tracked object per running attempt made young-generation collections run about half
    # again as often in a run of coroutine tasks (a cost only telemetry's runs paid)
    engine = Engine(InMemoryConnector(InMemoryBroker(), source_id="host-1"))
    assert await engine.run(attempt_tags_tracked()) == [False]


async def test_a_runs_lines_come_before_its_end() -> None:
    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker)).run(extract())
    kinds = [m.topic.split("/")[1] for m in broker.history if "/logs/" in m.topic
             or m.topic.endswith("/events")]  # fmt: skip
    assert "logs" in kinds
    last = [m for m in broker.history if m.topic.endswith("/events")][-1]
    assert decode_envelope(last.raw).body.event == "ENGINE_STOPPED"  # type: ignore[union-attr]
    assert broker.history.index(last) > max(
        i for i, m in enumerate(broker.history) if "/logs/" in m.topic
    )


async def test_the_level_and_cascades_own_loggers() -> None:
    @task
    async def chatty() -> None:
        etl.debug("not at INFO")
        etl.log(25, "between INFO and WARNING")
        logging.getLogger("cascade.runtime.engine").warning("the engine's own: never forwarded")

    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker), logs=LogForwarding(level="INFO")).run(chatty())
    [line] = [line for batch in _batches(broker) for line in batch.lines]
    assert (line.level, line.level_number, line.n) == ("INFO", 25, 1)  # n: of its lines sent


async def test_over_a_tasks_rate_lines_are_dropped_and_counted_exactly() -> None:
    @task
    async def flood() -> None:
        for i in range(1000):
            etl.info("line %d", i)

    broker = InMemoryBroker()
    engine = Engine(InMemoryConnector(broker), logs=LogForwarding(lines_per_second=100))
    await engine.run(flood())
    batches = _batches(broker)
    sent = sum(len(b.lines) for b in batches)
    dropped = sum(d.lines for b in batches for d in b.dropped)
    assert 100 <= sent < 1000
    assert sent + dropped == 1000
    assert {d.reason for b in batches for d in b.dropped} == {"rate"}
    assert (engine.stats.log_lines_sent, engine.stats.log_lines_dropped) == (sent, dropped)
    numbers = [line.n for b in batches for line in b.lines]
    assert numbers[:100] == list(range(1, 101))  # a second's burst, then the rate


async def test_beyond_a_tasks_budget_lines_are_dropped_as_such() -> None:
    @task
    async def long_winded() -> None:
        for i in range(30):
            etl.info("line %d", i)

    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker), logs=LogForwarding(max_lines_per_task=10)).run(
        long_winded()
    )
    batches = _batches(broker)
    assert [line.n for b in batches for line in b.lines] == list(range(1, 11))
    assert [(d.task_name, d.lines, d.reason) for b in batches for d in b.dropped] == [
        ("long_winded", 20, "budget")
    ]


async def test_tracebacks_and_long_messages_and_attempts() -> None:
    tries = []

    @task(retry=RetryPolicy(max_attempts=2, delay=0))
    def flaky() -> None:
        tries.append(1)
        try:
            raise ValueError("bad row")
        except ValueError:
            etl.exception("attempt %d failed", len(tries))
        etl.info("x" * 10_000)
        if len(tries) == 1:
            raise RuntimeError("again")

    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker), logs=LogForwarding(max_line_bytes=1000)).run(flaky())
    lines = [line for b in _batches(broker) for line in b.lines]
    assert [(line.attempt, line.n, line.level) for line in lines] == [
        (1, 1, "ERROR"), (1, 2, "INFO"), (2, 3, "ERROR"), (2, 4, "INFO")
    ]  # fmt: skip
    assert "Traceback" in lines[0].message
    assert "ValueError: bad row" in lines[0].message
    assert lines[1].message.endswith("… (9000 more bytes)")
    assert lines[1].message.startswith("x" * 1000)


async def test_without_forwarding_nothing_is_published_on_logs() -> None:
    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker), logs=None).run(extract())
    assert _batches(broker) == []


def test_an_application_without_logging_configured_still_sees_its_warnings() -> None:
    """Python prints WARNING and up to stderr when no handler is configured (lastResort); the
    engine's handler on the root logger must not silence that."""
    script = textwrap.dedent(
        """
        import logging
        from cascade.connector_kit.testing import InMemoryConnector
        from cascade.runtime import run, task

        @task
        def warn() -> None:
            logging.getLogger("app").warning("disk almost full")

        run(warn(), connector=InMemoryConnector())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "disk almost full" in done.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [("level", "LOUD"), ("lines_per_second", 0), ("max_queue", 0), ("batch_interval", -1)],
)
def test_bad_options_are_refused_naming_them(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option if option != "level" else "LOUD"):
        LogForwarding(**{option: value})  # type: ignore[arg-type]


async def test_prints_are_forwarded_when_asked_and_still_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @task
    def printer() -> None:
        print("first line\nsecond", end="")
        print(" line")
        print("to stderr", file=sys.stderr)

    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker), logs=LogForwarding(capture_print=True)).run(printer())
    lines = [line for batch in _batches(broker) for line in batch.lines]
    assert [(line.message, line.stream, line.level, line.n) for line in lines] == [
        ("first line", "stdout", "INFO", 1),
        ("second line", "stdout", "INFO", 2),
        ("to stderr", "stderr", "WARNING", 3),
    ]
    printed = capsys.readouterr()
    assert (printed.out, printed.err) == ("first line\nsecond line\n", "to stderr\n")
    assert not type(sys.stdout).__name__.startswith("_Printed")  # put back after the run


async def test_prints_are_not_forwarded_by_default() -> None:
    @task
    def printer() -> None:
        print("just printed")

    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker)).run(printer())
    assert _batches(broker) == []


async def test_a_runs_end_counts_the_lines_its_tasks_logged() -> None:
    """ENGINE_STOPPED's ``log_lines`` is the run's lines (each task's last number): a reader
    of its logs tells from it what it never received; an engine that forwards none says
    nothing."""
    broker = InMemoryBroker()
    await Engine(InMemoryConnector(broker)).run(transform(extract()))
    (end,) = [m for m in broker.history if m.topic.endswith("/events")][-1:]
    assert decode_envelope(end.raw).body.log_lines == 2  # type: ignore[union-attr]
    quiet = InMemoryBroker()
    await Engine(InMemoryConnector(quiet), logs=None).run(extract())
    (end,) = [m for m in quiet.history if m.topic.endswith("/events")][-1:]
    assert decode_envelope(end.raw).body.log_lines is None  # type: ignore[union-attr]
