"""What a dashboard is made with: one frozen object, given to :func:`serve_dashboard` (all of
it) or to :func:`create_app` (what the web app needs)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..live._fair_share import MAX_HOLDER_STREAMS, MAX_STREAMS, MAX_STREAMS_PER_CLIENT

if TYPE_CHECKING:
    from cascade.control.access import Roles
    from cascade.history import History
    from cascade.interfaces import Connector

    from .._guard import Tokens
    from .._history_source import HistorySource
    from ..auth._sign_in import SignIn

__all__ = ["DashboardSettings"]


def _print(text: str) -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class DashboardSettings:
    """Everything a dashboard is made with.

    The broker: ``connector`` makes the dashboard's one connection (only
    :func:`serve_dashboard` calls it), ``broker`` is how its start line names the broker,
    ``timeout`` how long a control waits for the broker. The server: ``host`` and ``port``
    (``None``: 127.0.0.1; port 0: any free one), served for a loopback ``Host``, ``host`` and
    ``allowed_hosts`` only. Controls: ``token`` (one secret, its controls issued by
    ``operator``, or :class:`Tokens`, each named); a team's dashboard: ``roles`` and
    ``sign_in``. ``history``: a history the page reads (or a :class:`HistorySource`), and
    ``record_command`` what the page says starts recording into it. ``fleet_threshold``:
    live runs from which the fleet is read from the engines' summaries (``None``: the
    default; ``0``: always). The streams' bounds: ``max_streams`` (all),
    ``max_streams_per_client`` and ``max_holder_streams`` (those kept for token holders).
    ``notify_allow``: the inside destinations (host names, addresses, networks) the admins'
    webhooks may post to (:class:`cascade.notify.Destinations`); none by default.

    ``demo``, when given, is called once the page is served and runs a workflow on the
    broker until cancelled (`cascade dashboard --demo`). ``say`` prints a line of what the
    server does, ``warn`` a warning (default: ``say``); ``on_ready(url)`` is called once the
    socket listens.
    """

    connector: Callable[[], Connector] | None = None
    broker: str = ""
    timeout: float = 5.0
    host: str | None = None
    port: int = 8787
    allowed_hosts: tuple[str, ...] = ()
    notify_allow: tuple[str, ...] = ()
    token: str | Tokens | None = None
    operator: str | None = None
    roles: Roles | None = None
    sign_in: SignIn | None = None
    history: History | HistorySource | None = None
    record_command: str | None = None
    fleet_threshold: int | None = None
    max_streams: int = MAX_STREAMS
    max_streams_per_client: int = MAX_STREAMS_PER_CLIENT
    max_holder_streams: int = MAX_HOLDER_STREAMS
    demo: Callable[[], Coroutine[Any, Any, None]] | None = None
    say: Callable[[str], None] = _print
    warn: Callable[[str], None] | None = None
    on_ready: Callable[[str], None] | None = None
