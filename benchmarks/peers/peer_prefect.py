"""Prefect 3 in its ephemeral local mode (no API URL: it starts a server of its own, in a
temporary PREFECT_HOME): ``@flow``, ``@task``, ``.map``; its console log at WARNING."""

from __future__ import annotations

import atexit
import os
import tempfile

import work

_home = tempfile.TemporaryDirectory(prefix="peers-prefect-", ignore_cleanup_errors=True)
atexit.register(_home.cleanup)
os.environ.setdefault("PREFECT_HOME", _home.name)
os.environ.setdefault("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "true")
# the server's start is the warm-up's, not timed; on a loaded machine it takes longer than the
# default 20 s allows
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "300")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import prefect  # noqa: E402 - configured by the environment above
from prefect import flow, task  # noqa: E402

noop = task(work.noop)
extract = task(work.extract)
clean = task(work.clean)
enrich = task(work.enrich)
load = task(work.load)
burn = task(work.burn)


@flow
def noops(n):
    return len(noop.map(range(n)).result())


@flow
def etl(n):
    rows = extract(n)
    return load(enrich.map(clean.map(rows)))


@flow
def cpu(n):
    return len(burn.map(range(n)).result())


WORKLOADS = {
    "noop": lambda n, broker: noops(n),
    "etl": lambda n, broker: etl(n),
    "cpu": lambda n, broker: cpu(n),
}


def version():
    return f"prefect {prefect.__version__}"
