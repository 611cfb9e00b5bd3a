"""Dask's local threaded scheduler: ``dask.delayed`` and ``dask.compute``.

A delayed graph is built before it runs, so the ETL's map is over ``n`` rows known then,
each item taking its row from ``extract``'s list by index (one small task more per item).
"""

from __future__ import annotations

import dask
import work
from dask import delayed

SCHEDULER = "threads"


def noops(n, broker):
    return len(dask.compute(*[delayed(work.noop)(i) for i in range(n)], scheduler=SCHEDULER))


def etl(n, broker):
    rows = delayed(work.extract)(n)
    cleaned = [delayed(work.clean)(rows[i]) for i in range(n)]
    enriched = [delayed(work.enrich)(row) for row in cleaned]
    return delayed(work.load)(enriched).compute(scheduler=SCHEDULER)


def cpu(n, broker):
    return len(dask.compute(*[delayed(work.burn)(i) for i in range(n)], scheduler=SCHEDULER))


WORKLOADS = {"noop": noops, "etl": etl, "cpu": cpu}


def version():
    return f"dask {dask.__version__}"
