"""A serving engine's triggers: the events each hears (the run ends its org's and project's
servers say, the signals on its topic, the files its glob lists), each claimed across the
fleet as a schedule's slot is (:mod:`._slot_claims`, ``kind="trigger"``) and started by the
server that won it when it has room; an event waits (bounded) while the server is full, and
what is passed over is counted and said."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cascade.connector_kit import RateLimitedLogger, cancel_all
from cascade.interfaces import (
    Connector,
    Constraint,
    InvalidMessageError,
    Message,
    SubscriptionHandle,
    decode_level,
    same_source,
)
from cascade.interfaces.serving import RunOrigin
from cascade.interfaces.wire import (
    MAX_SIGNAL_PAYLOAD_BYTES,
    RunEnded,
    ServedTrigger,
    decode_run_ended,
    ended_filter,
    ended_topic,
    event_key,
)

from .._events import RunFinished
from .._recv import signal_topic
from .._stats import EngineStats
from .._steps import explain
from ..constraints._tokenbucket import TokenBucket
from ._file_events import FileWatch
from ._own_starts import OwnStarts
from ._scheduler import SlotTaken, check_starters
from ._slot_claims import SlotClaims
from ._trigger import MAX_TRIGGER_DEPTH, Fired, RunEnd, SignalEvent, Trigger, TriggerEvent

__all__ = ["TriggerHooks", "Triggers", "check_triggers"]

_log = logging.getLogger("cascade.runtime.serve")


def _said(note: object) -> str:
    return note if isinstance(note, str) else ""


def check_triggers(triggers: Mapping[str, Trigger], workflows: Mapping[str, object]) -> None:
    """``ValueError`` for a bad name, a value that is no :class:`Trigger`, or a trigger of a
    workflow not served."""
    check_starters("trigger", Trigger, triggers, workflows)


class TriggerHooks(Protocol):
    """What the triggers ask of their server."""

    def trigger_pause(self, name: str) -> Constraint | None:
        """The pause that holds trigger ``name``: its own (``trigger:<name>``) or its
        workflow's; ``None`` if none."""
        ...

    def hold(self) -> str | None:
        """Hold a place for a run: why there is none, or ``None`` (held)."""
        ...

    def unhold(self) -> None:
        """Give back a place held, its run not started."""
        ...

    async def store_decides(self, source: str) -> bool:
        """Whether the results store this server shares with ``source`` takes the event once
        between them (its claim went to ``source``)."""
        ...


@dataclass
class _Waiting:
    key: str
    params: dict[str, Any]
    fired: Fired


@dataclass
class _State:
    """What a server knows of one trigger, for the announcement."""

    bucket: TokenBucket
    waiting: deque[_Waiting] = field(default_factory=deque)
    draining: bool = False
    events: int = 0
    last_event: str = ""
    last_at: float = 0.0
    started: int = 0
    last_run: str = ""
    dropped: int = 0
    last_dropped: str = ""


class Triggers:
    """Runs ``triggers`` for a server (``hooks``) of ``org_id`` and ``project_id``; ``changed``
    is called when what the announcement says of them changes."""

    def __init__(
        self,
        triggers: Mapping[str, Trigger],
        connector: Connector,
        prefix: str,
        org_id: str,
        project_id: str,
        hooks: TriggerHooks,
        stats: EngineStats,
        changed: Callable[[], None],
        *,
        starts: OwnStarts,
    ) -> None:
        self._triggers = dict(triggers)
        self._connector = connector
        self._prefix = prefix
        self._org = org_id
        self._project = project_id
        self._hooks = hooks
        self._starts = starts
        self._stats = stats
        self._changed = changed
        self.claims = SlotClaims(connector, prefix, org_id, project_id, kind="trigger")
        self._state = {
            name: _State(TokenBucket(t.max_per_minute / 60, t.max_per_minute))
            for name, t in self._triggers.items()
        }
        self._handles: list[SubscriptionHandle] = []
        self._tasks: set[asyncio.Task[object]] = set()
        self._log = RateLimitedLogger(_log)
        self._signal_place = signal_topic(org_id, project_id, "x", prefix)[:-1]

    def __bool__(self) -> bool:
        return bool(self._triggers)

    def workflow(self, name: str) -> str:
        """The workflow trigger ``name`` starts."""
        return self._triggers[name].workflow or name

    async def start(self) -> None:
        """Subscribe to the claims and to what the triggers hear; start the file listings."""
        if not self._triggers:
            return
        await self.claims.start()
        if any(t.after is not None for t in self._triggers.values()):
            topic = ended_filter(self._org, self._project, self._prefix)
            self._handles.append(await self._connector.subscribe(topic, self._on_ended))
        for name, trigger in self._triggers.items():
            if trigger.signal is not None:
                topic = signal_topic(self._org, self._project, trigger.signal, self._prefix)
                heard = self._signal_heard(name)
                self._handles.append(await self._connector.subscribe(topic, heard))
            elif trigger.files is not None:
                self._spawn(self._watch(name, trigger), f"cascade-trigger-{name}")

    async def stop(self) -> None:
        await cancel_all(self._tasks)  # a cancel a library's wait_for dropped is sent again
        handles, self._handles = self._handles, []
        for handle in handles:
            try:
                await handle.unsubscribe()
            except Exception as exc:
                _log.warning("cannot unsubscribe a trigger: %s", explain(exc))
        await self.claims.stop()

    def _spawn(self, work: Coroutine[None, None, object], label: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=label)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what the triggers hear -----------------------------------------------------------

    def say_ended(self, event: RunFinished, workflow: str, origin: RunOrigin | None) -> None:
        """Say on this server's ``ended`` topic that its served run ``event.run_id`` of
        ``workflow`` ended (what ``after`` triggers hear, here and at every server of the org
        and project), whether or not this server has triggers of its own."""
        ended = RunEnded(
            source=self._connector.source_id,
            run_id=event.run_id,
            workflow=workflow,
            status=event.status,
            params=dict(origin.params or {}) if origin is not None else {},
            trigger_depth=origin.trigger_depth if origin is not None else 0,
            ts=event.ts,
        )
        topic = ended_topic(self._org, self._project, ended.source, self._prefix)
        self._spawn(self._say_ended(topic, ended), "cascade-run-ended")

    async def _say_ended(self, topic: str, ended: RunEnded) -> None:
        try:
            await self._connector.publish(topic, ended, qos=1)
        except Exception as exc:
            self._log.warning("ended", "could not say run %s ended: %s", ended.run_id, explain(exc))

    def _on_ended(self, message: Message) -> None:
        levels = message.topic[len(self._prefix) + 1 :].split("/")
        if len(levels) != 5 or tuple(map(decode_level, levels[1:3])) != (self._org, self._project):
            return  # another org's or project's: never one of these triggers' events
        try:
            ended = decode_run_ended(message.raw)
        except InvalidMessageError as exc:
            self._refuse(message.topic, str(exc))
            return
        if not same_source(ended.source, levels[3]):
            self._refuse(message.topic, "its source is not its topic's (a forged run end)")
            return
        end = RunEnd(ended.run_id, ended.workflow, ended.status, ended.params, ended.source)
        said = f"run {ended.run_id} of {ended.workflow} {ended.status} on {ended.source}"
        for name, trigger in self._triggers.items():
            if trigger.after is not None and trigger.hears(end):
                fired = Fired(name, said, ended.run_id, ended.trigger_depth + 1)
                self._heard(name, trigger, event_key("after", ended.run_id), end, fired)

    def _refuse(self, topic: str, why: str) -> None:
        self._stats.trigger_events_refused += 1
        self._log.warning("refused", "refused a run end on %r: %s", topic[:256], why)

    def _signal_heard(self, name: str) -> Callable[[Message], None]:
        trigger = self._triggers[name]

        def heard(message: Message) -> None:
            if len(message.raw) > MAX_SIGNAL_PAYLOAD_BYTES or not isinstance(message.payload, dict):
                self._stats.signals_rejected += 1
                self._log.warning(
                    "signal",
                    "trigger %s: a signal of %d bytes refused (a JSON object of at most %d)",
                    name,
                    len(message.raw),
                    MAX_SIGNAL_PAYLOAD_BYTES,
                )
                return
            if not message.raw:
                return  # a retained signal cleared
            topic = message.topic.removeprefix(self._signal_place)
            payload = message.payload
            given = payload.get("id")
            key = event_key(
                "signal",
                topic,
                given if isinstance(given, str) else "",
                "" if isinstance(given, str) else message.raw.decode("utf-8", "replace"),
            )
            said = f"signal {topic}" + (f" {given}" if isinstance(given, str) else "")
            self._heard(name, trigger, key, SignalEvent(topic, payload), Fired(name, said, None, 1))

        return heard

    async def _watch(self, name: str, trigger: Trigger) -> None:
        assert trigger.files is not None
        try:
            watch = FileWatch(
                trigger.files, catchup=trigger.catchup, storage_options=trigger.storage_options
            )
        except Exception as exc:
            _log.error("trigger %s: cannot watch %s: %s", name, trigger.files, explain(exc))
            return
        while True:
            try:
                found = await watch.poll()
            except Exception as exc:  # FileWatchError: said, and listed again next period
                self._stats.trigger_listings_failed += 1
                self._log.warning("files", "trigger %s: %s", name, explain(exc))
                found = []
            for event in found:
                key = event_key("file", event.path, event.version)
                fired = Fired(name, f"file {event.path} ({event.version})", None, 1)
                self._heard(name, trigger, key, event, fired)
            await asyncio.sleep(trigger.period_seconds)

    def _heard(
        self, name: str, trigger: Trigger, key: str, event: TriggerEvent, fired: Fired
    ) -> None:
        """``event`` of trigger ``name`` heard: it waits for room, unless passed over."""
        state = self._state[name]
        if self.claims.claimed(name, key) is not None:
            return  # started already (a copy, a retained signal, a server restarted)
        state.events += 1
        state.last_event, state.last_at = fired.event[:1024], time.time()
        self._stats.trigger_events += 1
        self._changed()
        pause = self._hooks.trigger_pause(name)
        if pause is not None:
            by, why = _said(pause.issued_by), _said(pause.reason)
            self._stats.trigger_events_paused += 1
            self._drop(
                name,
                fired,
                f"paused{f' by {by}' if by else ''}{f': {why}' if why else ''}",
                counted=False,
            )
            return
        if fired.depth > MAX_TRIGGER_DEPTH:
            self._stats.trigger_loops_stopped += 1
            self._drop(
                name,
                fired,
                f"{fired.depth - 1} triggered runs led to it already "
                f"(MAX_TRIGGER_DEPTH {MAX_TRIGGER_DEPTH})",
                counted=False,
            )
            return
        if state.bucket.wait_time() > 0:
            self._drop(
                name, fired, f"over {trigger.max_per_minute} events a minute (max_per_minute)"
            )
            return
        state.bucket.take()
        if len(state.waiting) >= trigger.max_waiting:
            self._drop(name, fired, f"{len(state.waiting)} events wait already (max_waiting)")
            return
        try:
            params = trigger.params_of(event)
        except Exception as exc:
            self._drop(name, fired, f"its params raised {explain(exc)}")
            return
        state.waiting.append(_Waiting(key, params, fired))
        self._drain(name)

    def _drop(self, name: str, fired: Fired, why: str, *, counted: bool = True) -> None:
        state = self._state[name]
        state.dropped += 1
        state.last_dropped = f"{fired.event}: {why}"[:1024]
        if counted:
            self._stats.trigger_events_dropped += 1
        self._log.warning(
            f"drop-{name}", "trigger %s: %s starts nothing: %s", name, fired.event, why
        )
        self._changed()

    # -- starting their runs --------------------------------------------------------------

    def runs_changed(self) -> None:
        """Room may have freed, or a pause ended: the events waiting start where they may."""
        for name, state in self._state.items():
            if state.waiting:
                self._drain(name)

    def _drain(self, name: str) -> None:
        state = self._state[name]
        if not state.draining:
            state.draining = True
            self._spawn(self._drain_waiting(name), f"cascade-trigger-{name}")

    async def _drain_waiting(self, name: str) -> None:
        state, trigger = self._state[name], self._triggers[name]
        try:
            while state.waiting and self._hooks.trigger_pause(name) is None:
                busy = self._hooks.hold()
                if busy is not None:
                    self._log.warning(
                        f"wait-{name}",
                        "trigger %s: %d events wait for room (%s)",
                        name,
                        len(state.waiting),
                        busy,
                    )
                    return  # runs_changed drains again once a run ends
                waiting = state.waiting.popleft()
                try:
                    await self._start(name, trigger, waiting)
                except BaseException:
                    self._hooks.unhold()
                    raise
        finally:
            state.draining = False
            self._changed()

    async def _start(self, name: str, trigger: Trigger, waiting: _Waiting) -> None:
        """Claim ``waiting``'s event and start its run in the place held (given back when it
        does not start)."""
        won, first = await self.claims.claim(name, waiting.key)
        if first is None:
            self._hooks.unhold()
            self._stats.trigger_events_unclaimed += 1
            _log.warning(
                "trigger %s: %s: its claim was not heard back in time", name, waiting.fired.event
            )
            return
        if not won and not await self._hooks.store_decides(first.source):
            self._hooks.unhold()
            return  # another server took it
        try:
            run_id = await self._starts.trigger(
                name, trigger, waiting.params, waiting.fired, waiting.key, by_store=not won
            )
        except SlotTaken:
            self._hooks.unhold()
            if won:
                self._stats.trigger_events_deduplicated += 1
            return
        except Exception as exc:
            self._hooks.unhold()
            if won:
                self._drop(name, waiting.fired, f"its run did not start: {explain(exc)}")
            return
        state = self._state[name]
        state.started += 1
        state.last_run = run_id
        self._stats.trigger_runs_started += 1
        _log.info("trigger %s: %s started run %s", name, waiting.fired.event, run_id)

    def described(self) -> list[ServedTrigger]:
        """Each trigger as the announcement says it, with its state."""
        described = []
        for name, trigger in self._triggers.items():
            state = self._state[name]
            entry = trigger.described(name)
            pause = self._hooks.trigger_pause(name)
            if pause is not None:
                entry.paused = True
                entry.paused_by = _said(pause.issued_by)[:1024]
                entry.paused_reason = _said(pause.reason)[:1024]
                entry.paused_until = pause.expires_at or 0.0
            entry.events, entry.last_event, entry.last_at = (
                state.events,
                state.last_event,
                state.last_at,
            )
            entry.started, entry.last_run = state.started, state.last_run
            entry.waiting = len(state.waiting)
            entry.dropped, entry.last_dropped = state.dropped, state.last_dropped
            described.append(entry)
        return described
