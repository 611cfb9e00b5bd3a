"""A dashboard served: the hub, the web server and (for a demo) the demo workflow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from cascade.metrics import bind

from .._history_source import HistorySource
from ._listen import is_loopback
from ._settings import DashboardSettings

__all__ = ["serve_dashboard"]


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """A uvicorn server that ends the pages' streams first, so it can stop at once."""

        def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None]) -> None:
            super().__init__(config)
            self.on_shutdown = on_shutdown

        async def shutdown(self, sockets: Any = None) -> None:
            self.on_shutdown()
            await super().shutdown(sockets)

    return Server


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


async def _notifications(
    hub: Any, history: Any, url: str, allow: tuple[str, ...], warn: Callable[[str], None]
) -> Any:
    """The notifiers of the webhooks the admins added, started (``None`` without
    cascade-notify installed: the settings then say notifications need a history)."""
    try:
        import cascade.notify  # noqa: F401

        from ._notify_settings import Notifications
    except ImportError:
        warn("notifications: not run (pip install 'cascade-dashboard[notify]')")
        return None
    from cascade.notify import Destinations

    notifications = Notifications(
        hub.connector, history, dashboard_url=url.rstrip("/"), destinations=Destinations(allow)
    )
    await notifications.start()
    return notifications


async def serve_dashboard(settings: DashboardSettings) -> None:
    """Serve the dashboard ``settings`` describe until interrupted (see
    :class:`DashboardSettings`): connect to the broker (``settings.connector()``), then listen.

    With ``settings.history``, the page shows it too (``/api/history/...``); a
    :class:`HistorySource` without one (`cascade record`'s default, not there yet) has the page
    say how to start recording (``settings.record_command``). A team's dashboard (``roles``)
    writes its access audit and keeps its API tokens in that history, opened for writing, if
    its schema is this Cascade's (never migrated here: else it says so and keeps the rows in
    its log). Raises :class:`~cascade.interfaces.ConnectorError` when the broker cannot be
    reached and :class:`OSError` when ``host:port`` cannot be bound.
    """
    import uvicorn

    from ..auth._access_history import open_access_history, sink_of
    from ..auth._access_log import AccessLog
    from ..auth._proxy import ProxySignIn
    from ._api import create_app

    _Server = _server_class()
    from ..live._hub import DashboardHub

    if settings.connector is None:
        raise ValueError("a dashboard to serve needs settings.connector")
    say, warn = settings.say, settings.warn or settings.say
    host = settings.host or "127.0.0.1"
    token = settings.token
    async with contextlib.AsyncExitStack() as stack:
        thresholds = (
            {}
            if settings.fleet_threshold is None
            else {"fleet_threshold": settings.fleet_threshold}
        )
        hub = DashboardHub(
            settings.connector(), timeout=settings.timeout, operator=settings.operator, **thresholds
        )
        await hub.start()
        stack.push_async_callback(hub.stop)
        sock = bind(host, settings.port)
        stack.callback(sock.close)
        url = _url(host, sock.getsockname()[1])
        if not is_loopback(host):
            warn(
                f"warning: listening on {host}, not loopback: other machines can reach this "
                "dashboard (by a name: add --allowed-host NAME)"
            )
        if settings.demo is not None and token:
            secret = token if isinstance(token, str) else token.secrets[0][0].decode()
            say(f"open {url}#token={secret} to use the controls")
        source = HistorySource.of(settings.history)
        source.record = settings.record_command or source.record
        remembers = source.line()
        if remembers is not None:
            say(remembers)
        # a recorder behind says so in the history: the header shows it while it is
        recorders = asyncio.create_task(
            hub.follow_recorders(lambda: source.history), name="dashboard-recorders"
        )
        stack.callback(recorders.cancel)
        access_log, writer, notifications = None, None, None
        if settings.roles is not None:
            writer, where = await asyncio.to_thread(open_access_history, source)
            say(where)
            access_log = AccessLog(sink_of(writer) if writer is not None else None)
            if writer is not None:
                stack.callback(writer.close)
                stack.push_async_callback(access_log.flush)
                sessions = getattr(settings.sign_in, "sessions", None)
                if sessions is not None:  # sign-ins and their ends outlive a restart
                    await asyncio.to_thread(sessions.attach, writer)
                    fresh = asyncio.create_task(sessions.keep_fresh(), name="dashboard-sessions")
                    stack.callback(fresh.cancel)
                notifications = await _notifications(hub, writer, url, settings.notify_allow, warn)
                if notifications is not None:
                    stack.push_async_callback(notifications.stop)
        mode = (
            "team: people sign in, the roles file grants"
            if settings.roles is not None
            else "controls enabled"
            if token
            else "read-only: no --token"
        )
        say(f"cascade dashboard on {url} (broker {settings.broker}, {mode})")
        if settings.on_ready is not None:
            settings.on_ready(url)
        config = uvicorn.Config(
            create_app(
                hub,
                replace(settings, history=source),
                access_log=access_log,
                api_tokens=writer,
                notifications=notifications,
            ),
            log_level="warning",
            # a trusted proxy is known by its own address: never one a header says
            proxy_headers=not isinstance(settings.sign_in, ProxySignIn),
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = _Server(config, on_shutdown=hub.close_streams)
        tasks = [asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-http")]
        if settings.demo is not None:
            tasks.append(asyncio.create_task(settings.demo(), name="dashboard-demo"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hub.close_streams()
            server.should_exit = True
            for job in tasks[1:]:
                job.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for job in done:
            job.result()
