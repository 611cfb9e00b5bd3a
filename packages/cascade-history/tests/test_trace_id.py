"""A run's OpenTelemetry trace id (the envelope's optional ``trace_id``), kept with the run."""

from __future__ import annotations

from cascade.history import History

from .messages import T0, heartbeat, lifecycle, task

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_a_traced_runs_trace_id_is_stored_with_the_run(history: History) -> None:
    """From any of its messages, once; batches without it keep it; an untraced run has none."""
    history.store([task("r1", "a-1", "RUNNING", T0 + 1, trace_id=TRACE)])
    history.store([lifecycle("r1", "ENGINE_STARTED", T0), heartbeat("r1", T0 + 2)])
    history.store([lifecycle("r2", "ENGINE_STARTED", T0)])
    by_id = {summary.run_id: summary for summary in history.runs()}
    assert by_id["r1"].trace_id == TRACE
    assert by_id["r2"].trace_id is None
    detail = history.run("r1")
    assert detail is not None
    assert detail.run.trace_id == TRACE
    assert detail.run.to_json()["trace_id"] == TRACE
