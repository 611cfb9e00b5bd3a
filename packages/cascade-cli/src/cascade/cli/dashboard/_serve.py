"""`cascade dashboard`: the hub, the web server and (with ``--demo``) the demo workflow."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .._broker import BrokerOptions, ConnectorFactory
from .._listen import bind, is_loopback
from ._history_source import HistorySource

if TYPE_CHECKING:
    from cascade.control.access import Roles
    from cascade.history import History

    from ._guard import Tokens
    from ._sign_in import SignIn

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


def _record_command(broker: BrokerOptions) -> str:
    """`cascade record` on the dashboard's broker (its password aside: it has a variable)."""
    host = broker.host or "localhost"
    address = f"[{host}]:{broker.port}" if ":" in host else f"{host}:{broker.port}"
    words = ["cascade", "record", "--host", address]
    if broker.username:
        words += ["--username", broker.username]
    if broker.ca_file is not None:
        words += ["--ca-file", str(broker.ca_file)]
    elif broker.tls:
        words.append("--tls")
    return shlex.join(words)


async def serve_dashboard(
    broker: BrokerOptions,
    factory: ConnectorFactory,
    host: str,
    port: int,
    token: str | Tokens | None,
    console: Console,
    *,
    demo: bool = False,
    on_ready: Callable[[str], None] | None = None,
    allowed_host: Iterable[str] = (),
    history: History | HistorySource | None = None,
    operator: str | None = None,
    fleet_threshold: int | None = None,
    sign_in: SignIn | None = None,
    roles: Roles | None = None,
) -> None:
    """Serve the dashboard until interrupted (with ``demo``, on an embedded broker if no host).

    Requests are served for loopback names, ``host`` and ``allowed_host`` in their ``Host``
    header only. With ``history``, the page shows it too (``/api/history/...``); a
    :class:`HistorySource` without one (`cascade record`'s default, not there yet) has the page
    say how to start recording on this broker. A team's dashboard (``roles``) writes its
    access audit and keeps its API tokens in that history, opened for writing, if its schema
    is this Cascade's (never migrated here: else it says so and keeps the rows in its log).
    ``token``: one secret or :class:`~._guard.Tokens`; the controls of a token
    without a name are issued by ``operator`` (by default the MQTT username, else
    ``user@host``). From ``fleet_threshold`` live runs (``None``: the default; ``0``: always)
    it reads the fleet from the engines' summaries (``_fleet_mode``). ``on_ready(url)`` is
    called once the socket listens. Raises
    :class:`~cascade.interfaces.ConnectorError` when the broker cannot be reached and
    :class:`OSError` when ``host:port`` cannot be bound.
    """
    import uvicorn

    from ._access_history import open_access_history, sink_of
    from ._access_log import AccessLog
    from ._api import create_app
    from ._proxy import ProxySignIn

    _Server = _server_class()
    from ._hub import DashboardHub

    async with contextlib.AsyncExitStack() as stack:
        if demo:
            from .._demo import demo_broker

            broker = await stack.enter_async_context(demo_broker(broker, console))
        thresholds = {} if fleet_threshold is None else {"fleet_threshold": fleet_threshold}
        hub = DashboardHub(factory(broker), timeout=broker.timeout, operator=operator, **thresholds)
        await hub.start()
        stack.push_async_callback(hub.stop)
        sock = bind(host, port)
        stack.callback(sock.close)
        url = _url(host, sock.getsockname()[1])
        if not is_loopback(host):
            console.print(f"[yellow]warning: listening on {host}, not loopback: other machines "
                          "can reach this dashboard (by a name: add --allowed-host NAME)"
                          "[/yellow]")  # fmt: skip
        if demo and token:
            secret = token if isinstance(token, str) else token.secrets[0][0].decode()
            console.print(f"open {url}#token={secret} to use the controls",
                          soft_wrap=True, markup=False, highlight=False)  # fmt: skip
        source = HistorySource.of(history)
        source.record = _record_command(broker)
        remembers = source.line()
        if remembers is not None:
            console.print(remembers, soft_wrap=True, markup=False, highlight=False)
        access_log, writer = None, None
        if roles is not None:
            writer, where = await asyncio.to_thread(open_access_history, source)
            console.print(where, soft_wrap=True, markup=False, highlight=False)
            access_log = AccessLog(sink_of(writer) if writer is not None else None)
            if writer is not None:
                stack.callback(writer.close)
                stack.push_async_callback(access_log.flush)
                sessions = getattr(sign_in, "sessions", None)
                if sessions is not None:  # sign-ins and their ends outlive a restart
                    await asyncio.to_thread(sessions.attach, writer)
                    fresh = asyncio.create_task(sessions.keep_fresh(), name="dashboard-sessions")
                    stack.callback(fresh.cancel)
        mode = (
            "team: people sign in, the roles file grants"
            if roles is not None
            else "controls enabled"
            if token
            else "read-only: no --token"
        )
        console.print(f"cascade dashboard on {url} (broker {broker.address}, {mode})",
                      soft_wrap=True, markup=False, highlight=False)  # fmt: skip
        if on_ready is not None:
            on_ready(url)
        config = uvicorn.Config(
            create_app(
                hub,
                token=token,
                listen_host=host,
                allowed_host=allowed_host,
                history=source,
                sign_in=sign_in,
                roles=roles,
                access_log=access_log,
                api_tokens=writer,
            ),
            log_level="warning",
            # a trusted proxy is known by its own address: never one a header says
            proxy_headers=not isinstance(sign_in, ProxySignIn),
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = _Server(config, on_shutdown=hub.close_streams)
        tasks = [asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-http")]
        if demo:
            tasks.append(asyncio.create_task(_demo_loop(broker), name="dashboard-demo"))
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


async def _demo_loop(broker: BrokerOptions) -> None:
    """The demo workflow, run again and again on one engine, a few seconds apart."""
    from cascade.control import limit_constraints
    from cascade.runtime import Engine, TaskFailedError

    from .._demo import API_RATE, API_REASON, DEMO_OPERATOR, build_workflow, demo_engine_connector

    connector = demo_engine_connector(broker)
    async with connector:
        limits = limit_constraints("task:api_*", None, f"{API_RATE:g}/s", ttl=3600,
                                   reason=API_REASON, issued_by=DEMO_OPERATOR)  # fmt: skip
        for topic, constraint in limits:
            await connector.publish(topic, constraint, qos=1, retain=True)
        engine = Engine(connector, max_concurrency=4, heartbeat_interval=1.0)
        while True:
            with contextlib.suppress(TaskFailedError):  # one task fails on purpose
                await engine.run(build_workflow(24))
            await asyncio.sleep(5.0)
