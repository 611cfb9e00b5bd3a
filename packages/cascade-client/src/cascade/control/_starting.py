"""A start asked of the processes serving a workflow, and its answer.

Which process gets it: the one named (``on``); else, among the online processes serving the
workflow (of the org and project asked for, when given: a start's topic names one org and
project, which a broker ACL binds, so processes of several are an error naming them), when
one takes requests through the shared subscription, the broker picks one of them
(:func:`~cascade.interfaces.serving.start_topic`); else it is addressed to an online one
of the least ``running + queued``, at random among ties (brokers without shared
subscriptions). The org and project are the ones its announcement's topic names. The
answer counts only from a process that announces the workflow (the one named, when one
was): anyone who can publish may answer on ``{prefix}/reply/{org}/{id}/+``, so the others
are refused and counted, as a cancel's are (:class:`._answers.AnswerJudge`).

Where the broker sends retained announcements to exact subscriptions only (RabbitMQ 3.x),
the serving processes are asked to announce again (the roll call) and their answers awaited
:data:`~cascade.reader.ROLLCALL_WAIT` (1 s), so that the least busy is picked
among them all; the one ``on`` names, only until it is heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

from cascade.connector_kit import bounded
from cascade.interfaces import Connector, InvalidMessageError, Message, decode_level, same_source
from cascade.interfaces.commands import reply_filter
from cascade.interfaces.serving import (
    StartReply,
    StartRequest,
    addressed_start_topic,
    decode_start_reply,
    start_topic,
)
from cascade.reader import REASON_MISMATCH, ROLLCALL_WAIT, SHOWN, inert

from ._answers import Refusal
from ._publishing import publish_confirmed
from ._served import Served, ServedHeard, listen_served
from ._start_errors import NobodyServesError, ServedInManyPlacesError, StartTimeoutError

__all__ = ["StartJudge", "send_start"]

_WHO_LISTS = "cascade served lists who serves what"
_NAMED = 5  # servers an error names


class StartJudge:
    """The reply callback of one start request: takes the first answer from a process that
    serves its workflow (:meth:`allowed`) into :attr:`reply` and sets :attr:`decided`;
    refuses the others (``on_refused`` hears each; :attr:`refused` counts them)."""

    def __init__(
        self,
        request: StartRequest,
        allowed: Callable[[str], bool],
        prefix: str,
        on_refused: Callable[[Refusal], None] | None = None,
    ) -> None:
        self.request = request
        self.allowed = allowed
        self.reply: StartReply | None = None
        self.refused = 0
        self.decided = asyncio.Event()
        self._prefix = prefix
        self._on_refused = on_refused

    def __call__(self, message: Message) -> None:
        """Judge one message on the request's reply topics."""
        if self.decided.is_set():
            return
        try:
            reply = decode_start_reply(message.raw or message.payload)
        except InvalidMessageError:
            return  # not an answer to a start
        if reply.id != self.request.id:
            return
        levels = message.topic.removeprefix(f"{self._prefix}/reply/").split("/")
        level = levels[-1]
        shown = inert(reply.source, SHOWN["source"])
        if len(levels) != 3 or not same_source(reply.source, level):
            self._refuse(decode_level(level), f"{REASON_MISMATCH} (it says it is from {shown})")
        elif reply.workflow != self.request.workflow:
            self._refuse(reply.source, f"it answers for {reply.workflow}, not the one asked")
        elif not self.allowed(reply.source):
            self._refuse(reply.source, f"it does not serve {self.request.workflow}")
        else:
            self.reply = reply
            self.decided.set()

    def _refuse(self, source: str, why: str) -> None:
        self.refused += 1
        if self._on_refused is not None:
            self._on_refused(Refusal(source, why))


def _names(sources: list[str]) -> str:
    shown = ", ".join(inert(s, SHOWN["source"]) for s in sources[:_NAMED])
    more = len(sources) - _NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _named(server: Served, on: str | None) -> bool:
    return on is not None and (server.source == on or same_source(server.source, on))


def _within(server: Served, org: str | None, project: str | None) -> bool:
    announced = server.announcement
    return (org is None or announced.org_id == org) and (
        project is None or announced.project_id == project
    )


def _where(org: str | None, project: str | None) -> str:
    said = [f"org {org}" if org is not None else "", f"project {project}" if project else ""]
    return " in " + " and ".join(inert(s, SHOWN["name"]) for s in said if s) if any(said) else ""


def _addressed(workflow: str, server: Served, prefix: str) -> str:
    announced = server.announcement
    return addressed_start_topic(
        announced.org_id, announced.project_id, workflow, server.source, prefix
    )


def _target(
    workflow: str,
    on: str | None,
    heard: ServedHeard,
    prefix: str,
    org: str | None = None,
    project: str | None = None,
) -> tuple[str, list[Served]]:
    """The topic a request goes to, and the processes that may answer it; or
    :class:`NobodyServesError` (:class:`ServedInManyPlacesError`) saying why none may."""
    servers = [s for s in heard.servers_of(workflow) if _within(s, org, project)]
    online = [s for s in servers if s.online]
    where = _where(org, project)
    if on is not None:
        named = [s for s in heard.served() if _named(s, on) and _within(s, org, project)]
        if not named:
            raise NobodyServesError(
                f"{inert(on, SHOWN['source'])} serves nothing{where} ({_WHO_LISTS})", workflow
            )
        chosen = named[0]
        if chosen.workflow(workflow) is None:
            has = ", ".join(w.name for w in chosen.announcement.workflows) or "nothing"
            raise NobodyServesError(
                f"{inert(on, SHOWN['source'])} does not serve {workflow} (it serves {has})",
                workflow,
            )
        if not chosen.online:
            raise NobodyServesError(
                f"{inert(on, SHOWN['source'])} serves {workflow} but is offline", workflow
            )
        return _addressed(workflow, chosen, prefix), [chosen]
    if not online:
        offline = (
            f"; {_names([s.source for s in servers])} served it, offline now" if servers else ""
        )
        raise NobodyServesError(
            f"nobody serves {workflow}{where} ({_WHO_LISTS}){offline}", workflow
        )
    places = sorted({(s.announcement.org_id, s.announcement.project_id) for s in online})
    if len(places) > 1:
        shown = ", ".join(inert(f"{o}/{p}", SHOWN["name"]) for o, p in places[:_NAMED])
        raise ServedInManyPlacesError(
            f"{workflow} is served in {len(places)} projects ({shown}): a start goes to one; "
            "name its org and project (--org, --project)",
            workflow,
            tuple(places),
        )
    (place,) = places
    shared = [s for s in online if s.announcement.shared]
    if shared:
        return start_topic(*place, workflow, prefix), shared
    least = min(s.load for s in online)
    chosen = random.choice([s for s in online if s.load == least])
    return _addressed(workflow, chosen, prefix), [chosen]


async def send_start(
    connector: Connector,
    request: StartRequest,
    *,
    on: str | None = None,
    timeout: float = 5.0,
    on_refused: Callable[[Refusal], None] | None = None,
    on_sent: Callable[[str, list[Served]], None] | None = None,
    before_send: Callable[[list[Served]], Awaitable[object]] | None = None,
    org: str | None = None,
    project: str | None = None,
) -> StartReply:
    """Send ``request`` (:meth:`~cascade.interfaces.commands.Start.wire_request`) to a process
    serving its workflow (``on``: that source) and return its answer, within ``timeout``
    seconds in all.

    Raises :class:`~cascade.control.NobodyServesError` when no online process serves it
    (nothing sent), :class:`~cascade.control.StartTimeoutError` naming who serves it when no
    answer came, and :class:`~cascade.control.PublishRefusedError` when the broker refused
    the request (an ACL). ``before_send(servers)`` is awaited once the servers that may take
    it are known, before it is sent (to listen to their runs, say); ``on_sent(topic,
    servers)`` hears where it went."""
    prefix = connector.topic_prefix
    workflow = request.workflow
    deadline = time.monotonic() + timeout
    known = asyncio.Event()

    def wanted() -> None:
        if any(s.online and _named(s, on) for s in heard.servers_of(workflow)):
            known.set()

    # Where the broker needs a roll call, the one named is awaited until heard; without
    # one, every answer is (the least busy of them all is picked): nothing says all are in.
    heard = ServedHeard(prefix, None if on is None else wanted)
    until = None if on is None else known
    handles = await listen_served(connector, heard, until=until, wait=min(ROLLCALL_WAIT, timeout))
    try:
        topic, servers = _target(workflow, on, heard, prefix, org, project)
        sources = {s.source for s in servers}

        places = {(s.announcement.org_id, s.announcement.project_id) for s in servers}

        def allowed(source: str) -> bool:
            if on is not None:
                return source in sources
            return any(
                s.source == source and (s.announcement.org_id, s.announcement.project_id) in places
                for s in heard.servers_of(workflow)
            )

        judge = StartJudge(request, allowed, prefix, on_refused)
        for org in sorted({s.announcement.org_id for s in servers}):
            handles.append(await connector.subscribe(reply_filter(request.id, prefix, org), judge))
        if before_send is not None:
            await before_send(servers)
        await publish_confirmed(
            connector, [(topic, request)], max(0.0, deadline - time.monotonic()), retain=False
        )
        if on_sent is not None:
            on_sent(topic, servers)
        with contextlib.suppress(asyncio.TimeoutError):
            async with bounded(max(0.0, deadline - time.monotonic())):
                await judge.decided.wait()
        if judge.reply is None:
            names = _names(sorted(sources))
            who = f"{names}, which serves it" if len(sources) == 1 else f"{names}, who serve it"
            refused = f" ({judge.refused} answers from others refused)" if judge.refused else ""
            raise StartTimeoutError(
                f"no answer to start {workflow} within {timeout:g} s from {who}{refused}",
                workflow,
                tuple(sorted(sources)),
            )
        return judge.reply
    finally:
        for handle in handles:
            with contextlib.suppress(Exception):
                await handle.unsubscribe()
