"""At serve start, whether the results store the servers share creates a file exclusively: the
claims of carry-ons, schedule slots and reruns rest on it (docs/durability.md). A store that
does not is said and counted, and served from all the same."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading

from .._stats import EngineStats
from .._steps import explain
from ..results._results import ResultStore

__all__ = ["probe_store"]

_log = logging.getLogger("cascade.runtime.serve")

_NOT_EXACT = "a carried-on run may run twice, a schedule's slot or a rerun may start twice"


async def probe_store(store: ResultStore, stats: EngineStats) -> None:
    """Probe ``store`` (:meth:`ResultStore.creates_exclusively`) in a thread of its own, for
    ``store.probe_timeout`` at most: a store whose create is not exclusive is warned about
    and counted (``results_store_not_exclusive``), one that fails or does not answer too
    (``results_store_unprobed``). A store only this process opens (``memory://``) is not
    probed."""
    if store.shared_url is None:
        return
    answer: concurrent.futures.Future[bool] = concurrent.futures.Future()

    def probe() -> None:
        if not answer.set_running_or_notify_cancel():  # running: no longer cancelled
            return
        try:
            answer.set_result(store.creates_exclusively())
        except BaseException as exc:  # said by the serving side
            answer.set_exception(exc)

    # a daemon thread: a store that hangs keeps neither serving nor the process's exit waiting
    threading.Thread(target=probe, name="cascade-store-probe", daemon=True).start()
    try:
        exclusive = await asyncio.wait_for(asyncio.wrap_future(answer), store.probe_timeout)
    except asyncio.TimeoutError:
        stats.results_store_unprobed += 1
        _log.warning(
            "cannot tell whether results store %s creates files exclusively: no answer within "
            "%g s; if it does not, %s",
            store.url,
            store.probe_timeout,
            _NOT_EXACT,
        )
        return
    except Exception as exc:
        stats.results_store_unprobed += 1
        _log.warning(
            "cannot tell whether results store %s creates files exclusively: %s; if it does "
            "not, %s",
            store.url,
            explain(exc),
            _NOT_EXACT,
        )
        return
    if not exclusive:
        stats.results_store_not_exclusive += 1
        _log.warning(
            "results store %s does not create files exclusively (a second create of one new "
            "file succeeded): the servers sharing it may each take the same claim: %s "
            "(docs/durability.md)",
            store.url,
            _NOT_EXACT,
        )
