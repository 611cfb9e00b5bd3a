"""Run ids as every face takes them: a run named by its whole id (32 hex digits) or by a prefix
only one run has, found among the live runs the engines' summaries list, those a history
recorded and, only when these do not answer, those heard live (:func:`find_run`), and shown by
its first :data:`SHORT_ID` digits. `cascade cancel`, `retry`, `rerun`, `logs` and `why`, and
the dashboard's controls and history, resolve what they are given with these;
:meth:`~cascade.control.Controller.resolve_run` is the same for a caller in Python.
"""

from cascade.interfaces.wire import FULL_ID, MIN_RERUN_PREFIX, checked_prefix, is_full

from ._run_ids import (
    LIVE_WAIT,
    RECORDED_READ,
    SHORT_ID,
    HeardRuns,
    Listed,
    Recorded,
    find_run,
    heard_run_ids,
    listed_runs,
    live_wait,
    one_run,
    short_id,
)

__all__ = [
    "FULL_ID",
    "LIVE_WAIT",
    "RECORDED_READ",
    "MIN_RERUN_PREFIX",
    "SHORT_ID",
    "HeardRuns",
    "Listed",
    "Recorded",
    "checked_prefix",
    "find_run",
    "heard_run_ids",
    "is_full",
    "listed_runs",
    "live_wait",
    "one_run",
    "short_id",
]
