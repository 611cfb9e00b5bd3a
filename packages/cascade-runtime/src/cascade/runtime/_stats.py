"""An engine's counters over all its runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from .constraints._constraints import ConstraintStats

__all__ = ["EngineStats"]


@dataclass(slots=True)
class EngineStats(ConstraintStats):
    """An engine's counters over all its runs, read from :attr:`Engine.stats`.

    ``runs``: runs started. ``telemetry_dropped``: events the telemetry
    queue dropped because the connector did not keep up. ``log_lines_sent`` and
    ``log_lines_dropped``: the tasks' log lines forwarded, and dropped (over a budget, or
    not sent). The control loop's
    counters: ``accepted``: valid constraints applied. ``rejected_control``:
    control messages rejected as malformed (each logged at a limited rate).
    ``rejected_over_cap``: valid new constraints rejected because the engine
    already held ``max_constraints``. ``rejected_topic``: constraints refused because
    their payload names another scope or type than their topic. ``cleared``: topics
    cleared by an empty payload. ``expired``: constraints ended by their ``expires_at``.
    ``unretained``: constraints dropped after a (re)subscription because the
    broker no longer retained them (cleared while the engine was away).
    ``elsewhere``: constraints placed in another org or project than the engine's
    (``org:globex/task:*``): none of its tasks is theirs, so they are set aside.
    ``held``: tasks held for a decision (each hold, a task held again after a retry
    included). ``decisions``: decisions applied (a hold's deadline's included).
    ``decisions_refused``: decision requests refused (already decided, not held, unknown
    task, ambiguous, stale attempt; a copy of an answered request is not counted again).
    While it serves (:meth:`Engine.serve <cascade.runtime.Engine.serve>`): ``starts_taken``:
    start requests it took (answered ``started`` or, a dry run, ``planned``);
    ``starts_refused``: those it refused (answered ``refused``); ``starts_duplicated``: copies
    of a request it had already taken or refused (answered as the first was, or not at all
    while the first is under way); ``starts_rejected``: malformed requests (not answered,
    logged at a limited rate); ``starts_reserved``: requests refused (and counted in
    ``starts_refused``) for an id the servers make themselves, a carry-on's (``carry-...``) or
    a schedule's slot's (``sched-...``) outside that slot's backfill (each logged at a
    limited rate).
    With results kept (``Engine(results=...)``): ``results_kept`` and ``results_bytes``, the
    results stored and their bytes; ``results_not_kept``, results not stored (they cannot be
    encoded and decoded back equal, are over ``max_bytes``, the task has no fingerprint, or
    the write failed), and ``results_not_kept_by_task``, the same by task name (the first of
    each task is warned about, the rest logged at debug: each task's ``COMPLETED`` says why);
    ``results_reused``, tasks a rerun did not run, taking their stored
    result; ``results_cached``, tasks cached in the store (``with_cache``) that took a result
    an earlier run kept instead of running; ``results_refused``, stored results a rerun or the
    cache would have taken but did not believe (missing, not the size and sha256 its manifest
    or cache entry names, not a regular file, reached through a link, over ``max_bytes``, not
    read within the store's ``read_timeout``; for the cache, older than its ``expire``, or
    computed from a value decided upstream in this run): their tasks ran.
    ``constraints_unknown``: runs that started without the broker's retained constraints
    known within ``connect_wait`` (not connected yet, the subscription refused or not
    answered); each is warned about once, and the constraints apply when they arrive.
    ``signals_rejected``: messages a task's ``cs.recv`` was sent and did not take, over the
    signal bound (64 KiB; each logged at a limited rate; the task waits on).
    ``resources_set_up``: resources set up (once a run each, on first use);
    ``resource_teardowns_failed``: teardowns that raised (each logged; the run's outcome is
    what its tasks made it).
    While it serves schedules (docs/schedules.md): ``slots_claimed``: slots this engine won
    across the fleet; ``slots_fired``: those whose run it started; ``slots_skipped``: those
    it won and skipped (overlap ``skip``, a slot queued already, a full server; each said in a
    warning and in the announcement); ``slots_paused``: those it won and skipped while a pause
    on ``schedule:<name>`` was in force (said and announced alike); ``slots_missed``: slots no
    server claimed during an outage that its catchup did not fire; ``slots_unclaimed``: slots
    whose claim it did not hear back from the broker within ``CLAIM_WAIT`` (its connection
    down);
    ``slots_deduplicated``: slots it won whose start the results store it shares with the
    other servers refused, another having started the slot's run (a broker that does not
    order one topic's messages alike for every subscriber let two servers win it; it ran
    once); ``slots_doubled``: slots it fired that another server's announcement says it fired
    too (the same, with no shared results store: it ran twice); ``slots_backfilled``: past
    slots a backfill asked it to start that it claimed first (their runs started as a start
    request's do).
    While it serves triggers (docs/triggers.md): ``trigger_events``: events its triggers heard
    (not claimed yet); ``trigger_runs_started``: runs they started here (it won the event's
    claim); ``trigger_events_dropped``: events passed over for a flood past ``max_per_minute``,
    a wait past ``max_waiting``, params that raised, a run that did not start (each said in a
    warning and in the announcement); ``trigger_events_paused``: events heard while a pause on
    ``trigger:<name>`` (or its workflow) was in force, started never; ``trigger_loops_stopped``:
    run ends past ``MAX_TRIGGER_DEPTH`` triggered runs in a row; ``trigger_events_refused``: run
    ends refused (malformed, or a payload's source not its topic's); ``trigger_events_unclaimed``:
    events whose claim it did not hear back in time; ``trigger_events_deduplicated``: events it
    won whose start the shared results store refused (another server started them);
    ``trigger_listings_failed``: file listings that failed (said, listed again next period).
    While it serves (docs/durability.md): ``runs_carried_on``: runs of a server that died which
    this engine carried on (it won their claim); ``runs_left_lost``: such runs it would have
    carried on but left lost, said why (its line over ``max_carry_ons``, or no results store);
    ``carry_ons_refused``: runs announced live by a server found offline that the run's
    journal says another engine ran (an engine login of the org may announce any run of it),
    not carried on for that death, each said in a warning;
    ``journal_refused``: notes of a lost run's journal (a task's failed attempts, its hold's
    deadline) its carry-on did not believe, each said in a warning (an attempt out of bounds,
    a deadline later than a hold made now would have): their tasks started afresh.
    ``results_store_not_exclusive``: 1 once its probe at serve start found that its results
    store does not create a file exclusively (the claims that make a carry-on, a schedule's
    slot and a rerun start once across the servers sharing it are then not exact: said in a
    warning); ``results_store_unprobed``: 1 once that probe failed or had no answer in time
    (said too).
    """

    runs: int = 0
    constraints_unknown: int = 0
    telemetry_dropped: int = 0
    log_lines_sent: int = 0
    log_lines_dropped: int = 0
    held: int = 0
    decisions: int = 0
    decisions_refused: int = 0
    starts_taken: int = 0
    starts_refused: int = 0
    starts_duplicated: int = 0
    starts_rejected: int = 0
    starts_reserved: int = 0
    results_kept: int = 0
    results_bytes: int = 0
    results_not_kept: int = 0
    results_not_kept_by_task: dict[str, int] = field(default_factory=dict)
    results_reused: int = 0
    results_refused: int = 0
    results_cached: int = 0
    signals_rejected: int = 0
    resources_set_up: int = 0
    resource_teardowns_failed: int = 0
    slots_claimed: int = 0
    slots_fired: int = 0
    slots_skipped: int = 0
    slots_paused: int = 0
    slots_missed: int = 0
    slots_unclaimed: int = 0
    slots_deduplicated: int = 0
    slots_doubled: int = 0
    slots_backfilled: int = 0
    trigger_events: int = 0
    trigger_runs_started: int = 0
    trigger_events_dropped: int = 0
    trigger_events_paused: int = 0
    trigger_loops_stopped: int = 0
    trigger_events_refused: int = 0
    trigger_events_unclaimed: int = 0
    trigger_events_deduplicated: int = 0
    trigger_listings_failed: int = 0
    runs_carried_on: int = 0
    runs_left_lost: int = 0
    carry_ons_refused: int = 0
    results_store_not_exclusive: int = 0
    results_store_unprobed: int = 0
    journal_refused: int = 0
