"""Cascade's run history: what happened while no one watched.

A :class:`History` is one database (a SQLite file by default, PostgreSQL for
a fleet) that owns its schema and migrations, stores decoded messages once
each, and answers queries; a :class:`Recorder` feeds it from the broker::

    from cascade.history import History, Recorder

    history = History(mode="write")  # the default SQLite file; or History("postgresql://...")
    async with connector, Recorder(connector, history) as recorder:
        ...  # recording until the block ends

    reader = History()  # read-only: never creates, migrates nor writes
    for run in reader.runs(status="failed", since=timedelta(hours=24)):
        print(run.run_id, run.error)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

if TYPE_CHECKING:
    from cascade.reader import DecisionCount

    from ._errors import (
        HistoryError,
        HistoryMissing,
        LocationError,
    )
    from ._history import (
        TASKS_PAGE,
        History,
        Mode,
    )
    from ._received import (
        Received,
        decode_message,
    )
    from ._recorded_ids import recorded_in
    from ._schema_status import (
        SchemaStatus,
        migrate,
        migration_sql,
        schema_status,
    )
    from .access._sessions import DashboardSession
    from .access._tokens import (
        TOKEN_PREFIX,
        ApiToken,
        NewToken,
    )
    from .audit._notify_posts import (
        NotifyPost,
        PostClaim,
    )
    from .audit._notify_webhooks import NotifyWebhook
    from .queries._export import (
        AUDIT_COLUMNS,
        AUDIT_TIMES,
        EXPORT_FORMATS,
        RUN_COLUMNS,
        RUN_TIMES,
        TASK_COLUMNS,
        ExportFormatName,
        export_lines,
        iso_utc,
    )
    from .queries._graphs import RecordedGraph
    from .queries._loops import LoopIterations
    from .queries._maps import MapItems
    from .queries._report import (
        SUMMARY_TASKS,
        RunReport,
    )
    from .queries._run_filters import RunFilters
    from .queries._run_query import (
        STATES_KEPT,
        TaskOrder,
    )
    from .recorder._recorder import Recorder
    from .recorder._recorder_stats import RecorderStats
    from .records._attempts import (
        Attempt,
        DecisionRecord,
        StateChange,
    )
    from .records._audit_records import AuditEvent
    from .records._log_records import (
        LogBatches,
        LogCount,
        RecordedLogLine,
    )
    from .records._recorder_notes import RecorderNote
    from .records._records import (
        Claim,
        Execution,
        RunDetail,
        RunLink,
        RunSummary,
        SourceGap,
        Stored,
        TaskHistory,
        TaskStats,
    )
    from .store._location import default_path
    from .store._migrate import alembic_config

__all__, __getattr__, __dir__ = lazy_exports(__name__)
