"""The history's tables, as SQLAlchemy Core metadata (the migrations in ``_migrations`` build them).

Times are epoch seconds (UTC) in double-precision columns: the same in SQLite
and PostgreSQL, indexable, and subtractable in SQL. A change here needs a new
migration; ``tests/test_schema_migrations.py`` fails until the two agree.

The identity of an event ("stored once") is a unique index, so that it holds
for every writer of the database at once: ``(run_id, seq)`` where the engine
numbered its events, else ``(run_id, task_id, state, ts)`` for a task state and
``(run_id, event, ts)`` for a lifecycle event (partial indexes: rows with a
``seq`` are kept apart from those without).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "access_events",
    "api_tokens",
    "cancels",
    "constraint_events",
    "dashboard_sessions",
    "decisions",
    "issued_notes",
    "log_batches",
    "log_lines",
    "log_runs",
    "log_tasks",
    "metadata",
    "notify_claims",
    "notify_posts",
    "notify_webhooks",
    "presence",
    "recorder_notes",
    "run_events",
    "run_graphs",
    "run_claims",
    "run_refusals",
    "runs",
    "source_gaps",
    "task_events",
    "task_rollup",
    "task_run_hours",
    "task_runs",
]

# Names for every constraint and index, so that migrations and the models agree on both dialects.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_Time = sa.Double  # epoch seconds
_NOT_NULL_SEQ = sa.text("seq IS NOT NULL")
_NULL_SEQ = sa.text("seq IS NULL")

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("org_id", sa.String(1024), nullable=False),
    sa.Column("project_id", sa.String(1024), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),
    # the earliest timestamp seen of the run (its ENGINE_STARTED, once that has arrived)
    sa.Column("started_at", _Time, nullable=False),
    sa.Column("last_ts", _Time, nullable=False),  # the latest timestamp seen of the run
    sa.Column("ended_at", _Time, nullable=True),  # its ENGINE_STOPPED
    sa.Column("status", sa.String(16), nullable=False),  # Running, Succeeded, Failed
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("planned_tasks", sa.Integer, nullable=True),
    sa.Column("dropped_telemetry", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_seq", sa.BigInteger, nullable=True),  # the highest seq announced or seen
    # OpenTelemetry's, if the run was traced (revision 0005)
    sa.Column("trace_id", sa.String(32), nullable=True),
    # when the recorder first and last received a message of it (revision 0007): what
    # retention and periods go by, as no sender can put them ahead or behind; every run has
    # them (the recorder writes them; revision 0007 filled older runs' from their times)
    sa.Column("received_at", _Time, nullable=True),
    sa.Column("last_received_at", _Time, nullable=True),
    # what vouches that ``source`` runs it (revision 0011): ``start`` (its ENGINE_STARTED, seq 1),
    # ``topic`` (its sourced topic), ``online`` (its online status); None: only its word, so a
    # source something vouches for takes the run over (``run_claims`` keeps what was set aside)
    sa.Column("vouched", sa.String(16), nullable=True),
    # its name and where it came from, as its ENGINE_STARTED said (revision 0013): the served
    # workflow and its params (JSON text), the run it reruns and the first of that line, and
    # the start request's id, who asked, why and when (the audit's ``start`` row)
    sa.Column("name", sa.String(256), nullable=True),
    sa.Column("workflow", sa.String(64), nullable=True),
    sa.Column("params", sa.Text, nullable=True),
    sa.Column("rerun_of", sa.String(1024), nullable=True),
    sa.Column("root_run", sa.String(1024), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Column("issued_by", sa.String(256), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("issued_at", _Time, nullable=True),
    # the schedule that started it and the slot it fills (ISO, UTC), as its ENGINE_STARTED
    # said (revision 0016)
    sa.Column("schedule", sa.String(64), nullable=True),
    sa.Column("scheduled_for", sa.String(64), nullable=True),
    # the run it carries on and the engine whose death it carries on after, where a server
    # carried it on, as its ENGINE_STARTED said (revision 0020)
    sa.Column("carried_on_from", sa.String(1024), nullable=True),
    sa.Column("lost_engine", sa.String(256), nullable=True),
    # the trigger that started it, its event said and the run it followed, as its
    # ENGINE_STARTED said (revision 0021)
    sa.Column("trigger", sa.String(64), nullable=True),
    sa.Column("trigger_event", sa.String(1024), nullable=True),
    sa.Column("followed_run", sa.String(1024), nullable=True),
    sa.Index(None, "started_at"),
    sa.Index(None, "received_at"),
    sa.Index(None, "last_received_at"),
    sa.Index(None, "status", "started_at"),
    sa.Index(None, "project_id", "started_at"),
    sa.Index(None, "source", "started_at"),
    sa.Index(None, "name", "started_at"),
    sa.Index(None, "schedule", "started_at"),
    sa.Index(None, "trigger", "started_at"),
    sa.Index(None, "rerun_of"),
    sa.Index(None, "root_run"),
)

task_events = sa.Table(
    "task_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.String(1024), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("task_id", sa.String(1024), nullable=False),
    sa.Column("task_name", sa.String(1024), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("ts", _Time, nullable=False),
    sa.Column("duration_ms", _Time, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    # what held it back (a BLOCKED event's held_by, as sent; revision 0004)
    sa.Column("held_by", sa.JSON, nullable=True),
    # a failed attempt's traceback (FAILED, RETRYING; from engines that send it; revision 0011)
    sa.Column("traceback", sa.Text, nullable=True),
    # the decision the event came of (a Decided, as sent; on the retry's RUNNING, the hold's
    # end: COMPLETED, SKIPPED, FAILED; revision 0012)
    sa.Column("decided", sa.JSON, nullable=True),
    # the run whose stored result a rerun took instead of running it (COMPLETED; revision 0013)
    sa.Column("reused_from", sa.String(1024), nullable=True),
    # true: its cache (with_cache) gave the result instead of running it (COMPLETED; revision 0015)
    sa.Column("cached", sa.Boolean, nullable=True),
    sa.Index(
        "uq_task_events_run_id_seq",
        "run_id",
        "seq",
        unique=True,
        sqlite_where=_NOT_NULL_SEQ,
        postgresql_where=_NOT_NULL_SEQ,
    ),
    sa.Index(
        "uq_task_events_run_id_task_id_state_ts",
        "run_id",
        "task_id",
        "state",
        "ts",
        unique=True,
        sqlite_where=_NULL_SEQ,
        postgresql_where=_NULL_SEQ,
    ),
    sa.Index(None, "run_id", "task_id", "ts"),
    sa.Index(None, "task_name", "ts"),
    sa.Index(None, "ts"),
)

run_events = sa.Table(
    "run_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.String(1024), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=True),
    sa.Column("event", sa.String(32), nullable=False),  # ENGINE_STARTED, ENGINE_STOPPED
    sa.Column("ts", _Time, nullable=False),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("tasks", sa.Integer, nullable=True),
    sa.Index(
        "uq_run_events_run_id_seq",
        "run_id",
        "seq",
        unique=True,
        sqlite_where=_NOT_NULL_SEQ,
        postgresql_where=_NOT_NULL_SEQ,
    ),
    sa.Index(
        "uq_run_events_run_id_event_ts",
        "run_id",
        "event",
        "ts",
        unique=True,
        sqlite_where=_NULL_SEQ,
        postgresql_where=_NULL_SEQ,
    ),
)

presence = sa.Table(
    "presence",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # online, offline
    # 0 and 0.0 where the message had none (older tools): such a status is kept once
    sa.Column("session", sa.BigInteger, nullable=False),
    sa.Column("ts", _Time, nullable=False),
    sa.Column("received_at", _Time, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("conflict_session", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("source", "status", "session", "ts"),
    sa.Index(None, "received_at"),
)

constraint_events = sa.Table(
    "constraint_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    # the SHA-256 of the topic (hex): a topic may be longer than an index entry can be
    sa.Column("topic_key", sa.String(64), nullable=False),
    # the topic's n-th change as this database saw it: two recorders keep one copy of each
    sa.Column("change", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(8), nullable=False),  # set, cleared
    sa.Column("scope", sa.String(1024), nullable=True),
    sa.Column("type", sa.String(16), nullable=True),
    sa.Column("params", sa.JSON, nullable=True),
    sa.Column("constraint_id", sa.String(256), nullable=True),
    sa.Column("expires_at", _Time, nullable=True),
    sa.Column("at", _Time, nullable=False),  # when the recorder received it
    sa.Column("retained", sa.Boolean, nullable=False),
    # who set it and why, as its writer claimed (revision 0004)
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("issued_by", sa.String(256), nullable=True),
    sa.Column("issued_at", _Time, nullable=True),
    sa.UniqueConstraint("topic_key", "change"),
    sa.Index(None, "at"),
)

cancels = sa.Table(
    "cancels",
    metadata,
    # a run cancelled, as the answer of the engine that ran it said (revision 0006)
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),  # one row per request: a copy is none
    sa.Column("run_id", sa.String(1024), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),  # the engine that answered
    sa.Column("outcome", sa.String(64), nullable=False),  # cancelled, already_cancelled
    sa.Column("cancelled", sa.JSON, nullable=False),  # [{task_id, task_name}], at most 32
    sa.Column("cancelled_count", sa.BigInteger, nullable=False),
    sa.Column("abandoned", sa.JSON, nullable=False),
    sa.Column("abandoned_count", sa.BigInteger, nullable=False),
    sa.Column("not_started", sa.BigInteger, nullable=False),
    # who asked and why, as the request claimed and the engine echoed
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("issued_by", sa.String(256), nullable=True),
    sa.Column("issued_at", _Time, nullable=True),
    sa.Column("topic", sa.Text, nullable=False),  # the answer's
    sa.Column("at", _Time, nullable=False),  # when the recorder received the answer
    sa.UniqueConstraint("request_id"),
    sa.Index(None, "at"),
    sa.Index(None, "run_id"),
)

decisions = sa.Table(
    "decisions",
    metadata,
    # a decision on a held task, as the answer of the engine that ran it said (revision 0012)
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False),  # one row per request: a copy is none
    sa.Column("run_id", sa.String(1024), nullable=False),
    sa.Column("source", sa.String(1024), nullable=False),  # the engine that answered
    sa.Column("decision", sa.String(16), nullable=False),  # retry, skip, complete, fail
    sa.Column("outcome", sa.String(64), nullable=False),  # applied, already_decided, ...
    sa.Column("task_id", sa.String(1024), nullable=True),  # the task it found (None: none)
    sa.Column("task_name", sa.String(1024), nullable=True),
    sa.Column("attempt", sa.BigInteger, nullable=True),  # the attempt held when it came
    # the decision taken on that hold: this one when applied, the earlier one's when refused
    sa.Column("decided", sa.JSON, nullable=True),
    sa.Column("candidates", sa.JSON, nullable=True),  # task ids, when ambiguous
    # who asked and why, as the request claimed and the engine echoed
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("issued_by", sa.String(256), nullable=True),
    sa.Column("issued_at", _Time, nullable=True),
    sa.Column("topic", sa.Text, nullable=False),  # the answer's
    sa.Column("at", _Time, nullable=False),  # when the recorder received the answer
    sa.UniqueConstraint("request_id"),
    sa.Index(None, "at"),
    sa.Index(None, "run_id"),
)

run_refusals = sa.Table(
    "run_refusals",
    metadata,
    # messages about a run that no engine of it can have sent, refused, by reason (revision 0007)
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("reason", sa.String(32), primary_key=True),  # cascade.reader.REFUSAL_REASONS
    sa.Column("refused", sa.BigInteger, nullable=False),
    sa.Column("last_at", _Time, nullable=False),  # when the last was received
    sa.Index(None, "last_at"),
)

run_graphs = sa.Table(
    "run_graphs",
    metadata,
    # a run's graph of tasks as its ENGINE_STARTED sent it (revision 0019): ``graph`` its JSON
    # (checked: cascade.interfaces.graphs.check_graph), or NULL where the engine sent only its
    # size, above the graph's bound; ``nodes`` its tasks. Apart from ``runs``: up to 128 KiB a
    # run, read one run at a time, never by the runs' lists
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("nodes", sa.Integer, nullable=False),
    sa.Column("graph", sa.Text, nullable=True),
)

run_claims = sa.Table(
    "run_claims",
    metadata,
    # the sources that spoke of a run and were not believed as its engine (revision 0011): their
    # messages refused, and their events set aside when a source something vouches for took
    # the run over from them
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("refused", sa.BigInteger, nullable=False),
    sa.Column("set_aside", sa.BigInteger, nullable=False),
    sa.Column("last_at", _Time, nullable=False),
)

recorder_notes = sa.Table(
    "recorder_notes",
    metadata,
    # what each recorder says of itself as it records, every few seconds (revision 0022):
    # whether it keeps up with the broker, so that the dashboard says it while it happens
    sa.Column("recorder", sa.String(1024), primary_key=True),
    sa.Column("noted_at", _Time, nullable=False),
    sa.Column("behind_since", _Time, nullable=True),  # NULL: it keeps up
    sa.Column("queued", sa.BigInteger, nullable=False),
    sa.Column("lag", sa.Double, nullable=False),  # seconds the oldest message queued waited
    sa.Column("dropped", sa.BigInteger, nullable=False),
    sa.Column("shed", sa.BigInteger, nullable=False),
)

source_gaps = sa.Table(
    "source_gaps",
    metadata,
    # what one recorder found missing of one source's (engine's) numbered events
    sa.Column("source", sa.String(1024), primary_key=True),
    sa.Column("recorder", sa.String(1024), primary_key=True),
    # events missed, net of late copies that filled a hole (a recorder's GapCounter)
    sa.Column("missed", sa.BigInteger, nullable=False),
    sa.Column("first_at", _Time, nullable=False),  # when the recorder first saw a gap
    sa.Column("last_at", _Time, nullable=False),  # when its count last changed
    sa.Index(None, "last_at"),
)

# The per-task statistics kept as events are stored (``_rollup``): one row per task name, hour
# and duration bucket; the runs each name ran in, by the hour of their first finished execution.
task_rollup = sa.Table(
    "task_rollup",
    metadata,
    sa.Column("task_name", sa.String(1024), primary_key=True),
    sa.Column("hour", _Time, primary_key=True),  # the hour's start
    sa.Column("bucket", sa.Integer, primary_key=True),  # of the duration: 5 % wide
    sa.Column("executions", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False),
    sa.Column("max_ms", _Time, nullable=False),
    sa.Index(None, "hour"),
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("task_name", sa.String(1024), primary_key=True),
    sa.Column("first_at", _Time, nullable=False),  # its first finished execution in the run
)

task_run_hours = sa.Table(
    "task_run_hours",
    metadata,
    sa.Column("task_name", sa.String(1024), primary_key=True),
    sa.Column("hour", _Time, primary_key=True),
    sa.Column("runs", sa.BigInteger, nullable=False),
    sa.Index(None, "hour"),
)

# What the runs' tasks logged (revision 0008): their lines, the batches they came in (a copy of
# a batch, same run and seq, is stored once), and per task the lines stored and dropped.
log_lines = sa.Table(
    "log_lines",
    metadata,
    # AUTOINCREMENT: ids never reused after a prune, so "lines after id N" follows a run's log
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.String(1024), nullable=False),
    sa.Column("task_id", sa.String(1024), nullable=False),
    sa.Column("task_name", sa.String(1024), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),  # the line's number among its task's
    sa.Column("ts", _Time, nullable=False),  # when it was logged, as the engine said
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("level_number", sa.Integer, nullable=False),
    sa.Column("logger", sa.String(1024), nullable=False),
    sa.Column("message", sa.Text, nullable=False),  # at most MAX_LOG_LINE_BYTES
    sa.Column("stream", sa.String(8), nullable=True),  # stdout, stderr: a print
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=True),
    sa.Column("span_id", sa.String(16), nullable=True),
    sa.Column("received_at", _Time, nullable=False),  # what --keep-logs goes by
    sa.Index(None, "run_id", "id"),
    sa.Index(None, "run_id", "task_id", "id"),
    sa.Index(None, "received_at"),
    sqlite_autoincrement=True,
)

log_batches = sa.Table(
    "log_batches",
    metadata,
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("source", sa.String(1024), nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("received_at", _Time, nullable=False),
    sa.Index(None, "received_at"),
)

log_tasks = sa.Table(
    "log_tasks",
    metadata,
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("task_id", sa.String(1024), primary_key=True),
    sa.Column("task_name", sa.String(1024), nullable=False),
    sa.Column("lines", sa.BigInteger, nullable=False),  # stored (kept by --keep-logs or not)
    # what the engine dropped, by reason (cascade.interfaces.logs.DroppedLines)
    sa.Column("dropped_rate", sa.BigInteger, nullable=False),
    sa.Column("dropped_budget", sa.BigInteger, nullable=False),
    sa.Column("dropped_queue", sa.BigInteger, nullable=False),
    sa.Column("last_at", _Time, nullable=False),  # when a batch of it was last received
    # the highest line number (``n``) stored of it (revision 0011): numbers below it neither
    # stored nor said dropped are lines lost on the way (or before a recorder listened)
    sa.Column("last_n", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index(None, "last_at"),
)

# Per run, its log batches stored (copies once; kept by --keep-logs or not) and the highest
# batch number stored (revision 0014): the numbers below it not stored are batches lost on the
# way or sent before a recorder listened, whichever tasks' lines they held.
log_runs = sa.Table(
    "log_runs",
    metadata,
    sa.Column("run_id", sa.String(1024), primary_key=True),
    sa.Column("batches", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_at", _Time, nullable=False),  # when a batch of it was last received
    sa.Index(None, "last_at"),
)

# What a team's dashboard let people do or refused them (revision 0009): who, as what vouched for
# the name (oidc, proxy, api-token, token), did or tried what on what (``_access``).
access_events = sa.Table(
    "access_events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", _Time, nullable=False),  # when the dashboard checked it (its clock)
    sa.Column("who", sa.String(256), nullable=False),
    sa.Column("via", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # pause, resume, cancel, read, ...
    sa.Column("target", sa.String(1024), nullable=False),  # a scope, run:<id>, a path
    sa.Column("outcome", sa.String(8), nullable=False),  # allowed, refused
    sa.Column("reason", sa.Text, nullable=True),
    # revision 0010: refusals of one person, action and reason in one minute are one row
    sa.Column("count", sa.BigInteger, nullable=False, server_default="1"),
    sa.Column("last_at", _Time, nullable=True),  # the last of them (None: the row is one)
    sa.Column("claim", sa.String(64), nullable=True),  # the OIDC claim that named ``who``
    sa.Index(None, "at"),
)

# What a broker login said it did (revision 0009): a witness note on its own topic, kept by a
# recorder told the broker's ACL binds that topic to the login (``_witness``).
issued_notes = sa.Table(
    "issued_notes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("login", sa.String(1024), nullable=False),  # the topic's level: the broker's login
    sa.Column("topic", sa.Text, nullable=False),  # the topic it wrote
    sa.Column("action", sa.String(16), nullable=False),  # set, cleared, cancel
    sa.Column("issued_at", _Time, nullable=True),
    sa.Column("issued_by", sa.String(256), nullable=True),
    sa.Column("ref_id", sa.String(256), nullable=True),  # a constraint's id, a cancel request's
    sa.Column("at", _Time, nullable=False),  # when the recorder received it
    sa.Index(None, "at"),
)

# Per-person API tokens (revision 0009): the SHA-256 of each secret, never the secret (``_tokens``).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("holder", sa.String(256), nullable=False),  # a person as the roles file names them
    sa.Column("secret_hash", sa.String(64), nullable=False),  # hex
    sa.Column("label", sa.String(32), nullable=False),  # the secret's first characters
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.Column("expires_at", _Time, nullable=True),
    sa.Column("revoked_at", _Time, nullable=True),
    sa.Column("last_used_at", _Time, nullable=True),
    sa.UniqueConstraint("secret_hash"),
    sqlite_autoincrement=True,
)

# A team's dashboard's sign-in sessions (revision 0010): which are live, which were ended
# (signed out, revoked by an admin); ``handle`` is a hash of the cookie's session id
# (``_sessions``).
dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("handle", sa.String(64), primary_key=True),
    sa.Column("who", sa.String(256), nullable=False),
    sa.Column("claim", sa.String(64), nullable=True),
    sa.Column("signed_in_at", _Time, nullable=False),
    sa.Column("expires_at", _Time, nullable=False),
    sa.Column("revoked_at", _Time, nullable=True),
    sa.Column("revoked_by", sa.String(256), nullable=True),
    sa.Index(None, "expires_at"),
)

# `cascade notify`'s claims (revision 0017): one row per event and group of notifiers; the insert
# that makes it owns the post (``_notify_posts``). ``owner`` and ``claimed_at`` are its lease;
# ``posted_at`` is set once the post is done (whatever its outcome).
notify_claims = sa.Table(
    "notify_claims",
    metadata,
    sa.Column("notifier_group", sa.String(256), primary_key=True),
    sa.Column("event_key", sa.String(1024), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),  # the notifier holding the claim
    sa.Column("claimed_at", _Time, nullable=False),
    sa.Column("takeovers", sa.Integer, nullable=False),  # claims taken after their lease ended
    sa.Column("posted_at", _Time, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),  # posted, failed, digested
    sa.Index(None, "claimed_at"),
)

# `cascade notify`'s audit (revision 0017): each event posted to a webhook, or failed for good.
notify_posts = sa.Table(
    "notify_posts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", _Time, nullable=False),  # when the post ended
    sa.Column("event", sa.String(32), nullable=False),  # run.failed, task.held, ...
    sa.Column("event_key", sa.String(1024), nullable=False),
    sa.Column("run_id", sa.String(1024), nullable=True),
    sa.Column("task_id", sa.String(1024), nullable=True),
    sa.Column("source", sa.String(1024), nullable=True),  # the engine
    sa.Column("webhook", sa.String(1024), nullable=False),  # redacted: scheme and host
    sa.Column("outcome", sa.String(16), nullable=False),  # posted, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("status", sa.Integer, nullable=True),  # the last HTTP status (None: no answer)
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("digest", sa.Boolean, nullable=False),  # posted within a digest
    sa.Column("notifier", sa.String(256), nullable=False),
    sa.Column("notifier_group", sa.String(256), nullable=False),
    sa.Index(None, "at"),
)

# The webhooks a dashboard's admins added (revision 0018), each run by the dashboard's process as
# a notifier. ``url`` is a secret (it often holds a token): only the dashboard's process reads it.
notify_webhooks = sa.Table(
    "notify_webhooks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("format", sa.String(16), nullable=False),  # generic, slack
    sa.Column("events", sa.String(256), nullable=False),  # a comma list
    sa.Column("filters", sa.Text, nullable=False),  # a comma list of ORG[/PROJECT[/WORKFLOW]]
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
)
