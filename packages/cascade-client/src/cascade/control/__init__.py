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
        decided = await control.decide(run_id, "load", "retry", reason="API back")  # a held task
        run = control.run(run_id, org="acme", project="etl")  # one run, bound once
        await run.skip("side", reason="not today")

Bad input raises :class:`ControlError` (a ``ValueError``) naming the field at fault before
anything is sent; :func:`read_request` reads a request from a JSON body (as the dashboard
does) with the same checks. The `cascade` command and the dashboard steer through it, and
say its answers and errors as exit codes and HTTP answers. Run ids as the faces resolve them
are :mod:`cascade.control.run_ids`; the checks of who asks and why,
:mod:`cascade.control.checks`; who may steer what in a team, :mod:`cascade.control.access`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cascade.interfaces.lazy import lazy_exports

if TYPE_CHECKING:
    from cascade.interfaces.commands import (
        Cancel,
        ControlError,
        Decide,
        Limit,
        Pause,
        Resume,
        Start,
    )
    from cascade.interfaces.wire import read_request

    from ._answers import (
        Answer,
        CancelAnswer,
        Refusal,
    )
    from ._controller import (
        Cleared,
        Controller,
        RunHandle,
        Steered,
    )
    from ._decisions import DecisionAnswer
    from ._publishing import (
        PublishRefusedError,
        publish_confirmed,
    )
    from ._run_end import (
        RunEndError,
        RunEnds,
        wait_run,
    )
    from ._run_lost import RunLostError
    from ._served import (
        Served,
        ServedHeard,
    )
    from ._start_errors import (
        NobodyServesError,
        ServedInManyPlacesError,
        StartError,
        StartTimeoutError,
    )

__all__, __getattr__, __dir__ = lazy_exports(__name__)
