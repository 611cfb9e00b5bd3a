"""What a start raises when no serving process answered it: nobody serves the workflow, or
none answered in time (a refusal is an answer: :class:`~cascade.interfaces.serving.StartReply`)."""

from __future__ import annotations

from cascade.interfaces import CascadeError

__all__ = ["NobodyServesError", "ServedInManyPlacesError", "StartError", "StartTimeoutError"]


class StartError(CascadeError):
    """A start request no serving process answered; :attr:`workflow` is the one asked for."""

    def __init__(self, message: str, workflow: str) -> None:
        super().__init__(message)
        self.workflow = workflow


class NobodyServesError(StartError):
    """No online process serves the workflow (or not the one named): nothing was sent."""


class ServedInManyPlacesError(StartError):
    """Online processes of several orgs or projects serve the workflow, and the request
    named neither (a start's topic names one org and project): nothing was sent;
    :attr:`places` are the ``(org, project)`` pairs that serve it."""

    def __init__(self, message: str, workflow: str, places: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message, workflow)
        self.places = places


class StartTimeoutError(StartError):
    """The request was sent and no process that serves the workflow answered in time;
    :attr:`servers` are the sources it could have gone to."""

    def __init__(self, message: str, workflow: str, servers: tuple[str, ...]) -> None:
        super().__init__(message, workflow)
        self.servers = servers
