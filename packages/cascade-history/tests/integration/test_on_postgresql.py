"""The access audit, token, notify claim, cancel, ingest, gap, graph, lineage, map, query, run
filter, migration, read-mode, recorder, log and visible-run tests again, each on a new
database of a private PostgreSQL cluster (``database_url`` of this folder's conftest)."""

from __future__ import annotations

from cascade.testkit import NOT_THE_SHARED_BROKER, skip_on_family

from ..test_access_audit import *  # noqa: F403
from ..test_cancels import *  # noqa: F403
from ..test_gaps import *  # noqa: F403
from ..test_graphs import *  # noqa: F403
from ..test_lineage import *  # noqa: F403
from ..test_logs import *  # noqa: F403
from ..test_maps import *  # noqa: F403
from ..test_notify_posts import *  # noqa: F403
from ..test_queries import *  # noqa: F403
from ..test_read_mode import *  # noqa: F403
from ..test_recorder import *  # noqa: F403
from ..test_recorder_logs import *  # noqa: F403
from ..test_recorder_notes import test_a_recorders_latest_note_replaces_the_one_before  # noqa: F401
from ..test_refusals import *  # noqa: F403
from ..test_rollup import *  # noqa: F403
from ..test_run_filters import *  # noqa: F403
from ..test_run_pages import *  # noqa: F403
from ..test_schema_migrations import *  # noqa: F403
from ..test_store import *  # noqa: F403
from ..test_tokens import *  # noqa: F403
from ..test_visible_runs import *  # noqa: F403

# In-memory brokers only: the same on every family, so the mosquitto session runs them once.
pytestmark = [
    skip_on_family("rabbitmq", NOT_THE_SHARED_BROKER),
    skip_on_family("nats", NOT_THE_SHARED_BROKER),
]
