"""What a run opens on the broker (its telemetry, constraints, commands, log lines and
summaries) and closes, in order, at its end."""

from __future__ import annotations

import logging
from collections.abc import Callable

from cascade.interfaces.commands import DecisionReply, DecisionRequest
from cascade.interfaces.graphs import RunGraph
from cascade.interfaces.serving import RunOrigin

from .._run import Run
from .._steps import StepFailed, within
from ..logs._logs import RunLogs
from ._commands import CommandListener
from ._control_link import ControlLink
from ._link_context import LinkContext
from ._summary import EngineSummaries, summaries_for
from ._telemetry import TelemetrySubscriber

__all__ = ["RunWiring"]

_log = logging.getLogger("cascade.runtime.engine")


class RunWiring:
    """One run's links to the broker through ``context.connector``: :meth:`open` before its
    first task, :meth:`close_logs` before its end is emitted, :meth:`close` after (each step
    bounded by the engine's ``shutdown_timeout``, never raising for the broker); ``context``
    is what the engine hands it as the run starts."""

    def __init__(
        self,
        context: LinkContext,
        run: Run,
        *,
        name: str | None,
        origin: RunOrigin | None,
        graph: RunGraph | None = None,
        manage: bool,
        decide: Callable[[DecisionRequest], DecisionReply | None],
    ) -> None:
        self.context = context
        self.connector = context.connector
        self.run = run
        self.manager = run.manager
        self.trace_id = run.tracing.trace_id if run.tracing is not None else None
        self.name = name
        self.origin = origin
        self.graph = graph
        self.manage = manage
        self.decide = decide
        self.telemetry: TelemetrySubscriber | None = None
        self.summaries: EngineSummaries | None = None
        self.logs: RunLogs | None = None
        self.link: ControlLink | None = None
        self.commands: CommandListener | None = None
        self.unsubscribe_bus: Callable[[], None] | None = None

    async def open(self) -> None:
        """Subscribe to the constraints (waiting for the retained ones at most
        ``connect_wait``) and to the run's commands, and start its telemetry, log lines and
        summaries."""
        context, connector, run_id = self.context, self.connector, self.run.run_id
        telemetry = self.telemetry = TelemetrySubscriber(
            connector,
            run_id=run_id,
            org_id=context.org_id,
            project_id=context.project_id,
            topic_prefix=context.topic_prefix,
            heartbeat_interval=context.heartbeat_interval,
            holds=self.run.holds,
            trace_id=self.trace_id,
            name=self.name,
            origin=self.origin,
            graph=self.graph,
            graph_nodes=len(self.run.graph.nodes) if self.graph is None else None,
        )
        commands = self.commands = CommandListener(
            connector,
            context.cancel,
            run_id,
            context.topic_prefix,
            telemetry.request_snapshot,
            org_id=context.org_id,
            decide=self.decide,
            project_id=context.project_id,
        )
        self.link = ControlLink(
            connector,
            self.manager,
            topic_prefix=context.topic_prefix,
            manage=self.manage,
            wait=context.connect_wait,
            then=commands.subscribe,  # after the constraints: the run waits on it not
            task_names={node.lazy.name for node in self.run.graph.nodes},
        )
        await self.link.open()
        if not self.link.constraints_known:
            context.stats.constraints_unknown += 1
        self.unsubscribe_bus = context.events.subscribe(telemetry.on_event, resources=False)
        telemetry.start()
        self.logs = self.run.logs
        if self.logs is not None:
            self.logs.start()
        if context.summaries:
            self.summaries = summaries_for(
                connector, context.topic_prefix, context.heartbeat_interval
            )
            self.summaries.run_started(
                telemetry,
                org_id=context.org_id,
                project_id=context.project_id,
                trace_id=self.trace_id,
            )

    async def close_logs(self) -> None:
        """Send the run's last log lines (before its end, for those who follow both)."""
        if self.logs is not None:
            stats = self.context.stats
            await self.logs.aclose(self.context.shutdown_timeout)
            stats.log_lines_sent += self.logs.sent
            stats.log_lines_dropped += self.logs.dropped

    async def close(self, status: str) -> None:
        """Unsubscribe, send the run's last telemetry and then the source's summary with the
        run ended, and disconnect a connection the run opened: once the decisions the broker
        routed to the run until then are answered (their answers flushed as it disconnects)."""
        context = self.context
        timeout = context.shutdown_timeout
        if self.link is not None:
            await self.link.close(timeout)
        commands = self.commands
        if commands is not None:
            commands.run_ended()  # its decisions answered from the engine's ended runs
            if not self.manage:  # a decision may still be on its way: the connection stays
                await context.ended_runs.listen(self.run.run_id, commands.close, timeout)
        if self.telemetry is not None:
            await self.telemetry.aclose(timeout)
            context.stats.telemetry_dropped += self.telemetry.dropped
            if self.summaries is not None:
                await self.summaries.run_ended(self.telemetry, status, timeout)
        if self.manage:
            if commands is not None:  # the decisions that reached the broker until now answered
                await commands.drain(timeout)  # (those after reach nobody: docs/protocol.md)
                await commands.close(timeout)
            try:
                async with within("disconnect", timeout, "shutdown_timeout"):
                    await self.connector.disconnect()
            except StepFailed as exc:
                _log.warning("%s", exc)
        if self.unsubscribe_bus is not None:
            self.unsubscribe_bus()
