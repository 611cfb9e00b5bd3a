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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cascade.interfaces.commands import DecisionCount

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
    from .queries._maps import MapItems
    from .queries._report import (
        SUMMARY_TASKS,
        RunReport,
    )
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

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_TIMES",
    "EXPORT_FORMATS",
    "RUN_COLUMNS",
    "RUN_TIMES",
    "TASK_COLUMNS",
    "ExportFormatName",
    "export_lines",
    "iso_utc",
    "STATES_KEPT",
    "SUMMARY_TASKS",
    "TASKS_PAGE",
    "TOKEN_PREFIX",
    "ApiToken",
    "Attempt",
    "AuditEvent",
    "Claim",
    "DecisionCount",
    "DashboardSession",
    "DecisionRecord",
    "Execution",
    "History",
    "HistoryError",
    "HistoryMissing",
    "LocationError",
    "LogBatches",
    "LogCount",
    "MapItems",
    "Mode",
    "NewToken",
    "NotifyPost",
    "NotifyWebhook",
    "PostClaim",
    "Received",
    "RecordedGraph",
    "RecordedLogLine",
    "SchemaStatus",
    "Recorder",
    "RecorderStats",
    "RunDetail",
    "RunLink",
    "RunReport",
    "RunSummary",
    "SourceGap",
    "StateChange",
    "Stored",
    "TaskHistory",
    "TaskOrder",
    "TaskStats",
    "alembic_config",
    "decode_message",
    "default_path",
    "migrate",
    "recorded_in",
    "migration_sql",
    "schema_status",
]

# Where each name is defined: a name is imported from its module when first used (PEP 562),
# so that whoever needs one name does not pay for all of them (a command's start).
_HOMES = {
    "DecisionCount": "cascade.interfaces.commands",
    "HistoryError": "._errors",
    "HistoryMissing": "._errors",
    "LocationError": "._errors",
    "TASKS_PAGE": "._history",
    "History": "._history",
    "Mode": "._history",
    "Received": "._received",
    "decode_message": "._received",
    "recorded_in": "._recorded_ids",
    "SchemaStatus": "._schema_status",
    "migrate": "._schema_status",
    "migration_sql": "._schema_status",
    "schema_status": "._schema_status",
    "DashboardSession": ".access._sessions",
    "TOKEN_PREFIX": ".access._tokens",
    "ApiToken": ".access._tokens",
    "NewToken": ".access._tokens",
    "NotifyPost": ".audit._notify_posts",
    "PostClaim": ".audit._notify_posts",
    "NotifyWebhook": ".audit._notify_webhooks",
    "AUDIT_COLUMNS": ".queries._export",
    "AUDIT_TIMES": ".queries._export",
    "EXPORT_FORMATS": ".queries._export",
    "RUN_COLUMNS": ".queries._export",
    "RUN_TIMES": ".queries._export",
    "TASK_COLUMNS": ".queries._export",
    "ExportFormatName": ".queries._export",
    "export_lines": ".queries._export",
    "iso_utc": ".queries._export",
    "RecordedGraph": ".queries._graphs",
    "MapItems": ".queries._maps",
    "SUMMARY_TASKS": ".queries._report",
    "RunReport": ".queries._report",
    "STATES_KEPT": ".queries._run_query",
    "TaskOrder": ".queries._run_query",
    "Recorder": ".recorder._recorder",
    "RecorderStats": ".recorder._recorder_stats",
    "Attempt": ".records._attempts",
    "DecisionRecord": ".records._attempts",
    "StateChange": ".records._attempts",
    "AuditEvent": ".records._audit_records",
    "LogBatches": ".records._log_records",
    "LogCount": ".records._log_records",
    "RecordedLogLine": ".records._log_records",
    "Claim": ".records._records",
    "Execution": ".records._records",
    "RunDetail": ".records._records",
    "RunLink": ".records._records",
    "RunSummary": ".records._records",
    "SourceGap": ".records._records",
    "Stored": ".records._records",
    "TaskHistory": ".records._records",
    "TaskStats": ".records._records",
    "default_path": ".store._location",
    "alembic_config": ".store._migrate",
}


def __getattr__(name: str) -> Any:
    """Each public name, from its module on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __package__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, those not imported yet included."""
    return sorted({*globals(), *__all__})
