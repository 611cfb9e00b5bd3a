"""Steering as a Python API: pause, resume, limit and cancel what engines run, decide on their
held tasks and start served workflows, over any :class:`~cascade.interfaces.Connector`.

:class:`Controller` is the whole of it for most callers: each verb is one request
(:class:`Pause`, :class:`Limit`, :class:`Resume`, :class:`Cancel`, :class:`Decide`,
:class:`Start`), checked when it is made, that :meth:`Controller.send` sends; a method per
verb makes its request and sends it::

    async with connector:  # connected; its topic_prefix says which deployment
        control = Controller(connector, issued_by="alice")
        steered = await control.pause("task:load_*", ttl=3600, reason="maintenance")
        await control.send(Resume(scope="task:load_*"))
        answer = await control.cancel(await control.resolve_run("58a88765cea2"))
        decided = await control.retry(run_id, "load", reason="API back")  # a held task

Bad input raises :class:`ControlError` (a ``ValueError``) naming the field at fault before
anything is sent; :func:`read_request` reads a request from a JSON body (as the dashboard
does) with the same checks. The `cascade` command and the dashboard steer through it, and
say its answers and errors as exit codes and HTTP answers. Run ids as the faces resolve them
are :mod:`cascade.control.run_ids`; who may steer what in a team is
:mod:`cascade.control.access`.
"""

from cascade.interfaces.commands import (
    MAX_REASON_LENGTH,
    ControlError,
    Decide,
    checked_name,
    checked_reason,
    default_operator,
)

from ._answers import Answer, CancelAnswer, Refusal
from ._controller import Cleared, Controller, Steered
from ._decisions import DecisionAnswer
from ._publishing import PublishRefusedError, publish_confirmed
from ._requests import Cancel, Limit, Pause, Resume, Start, read_request
from ._run_end import RunEndError, RunEnds, wait_run
from ._served import Served, ServedHeard
from ._start_errors import (
    NobodyServesError,
    ServedInManyPlacesError,
    StartError,
    StartTimeoutError,
)

__all__ = [
    "MAX_REASON_LENGTH",
    "Answer",
    "Cancel",
    "CancelAnswer",
    "Cleared",
    "ControlError",
    "Controller",
    "Decide",
    "DecisionAnswer",
    "Limit",
    "NobodyServesError",
    "Pause",
    "PublishRefusedError",
    "Refusal",
    "Resume",
    "RunEndError",
    "RunEnds",
    "Served",
    "ServedHeard",
    "ServedInManyPlacesError",
    "Start",
    "StartError",
    "StartTimeoutError",
    "Steered",
    "checked_name",
    "checked_reason",
    "default_operator",
    "publish_confirmed",
    "read_request",
    "wait_run",
]
