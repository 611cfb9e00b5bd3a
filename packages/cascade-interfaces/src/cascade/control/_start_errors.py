"""What a start raises when no serving process answered it: nobody serves the workflow, or
none answered in time (a refusal is an answer: :class:`~cascade.interfaces.StartReply`)."""

from __future__ import annotations

__all__ = ["NobodyServesError", "StartError", "StartTimeoutError"]


class StartError(Exception):
    """A start request no serving process answered; :attr:`workflow` is the one asked for."""

    def __init__(self, message: str, workflow: str) -> None:
        super().__init__(message)
        self.workflow = workflow


class NobodyServesError(StartError):
    """No online process serves the workflow (or not the one named): nothing was sent."""


class StartTimeoutError(StartError):
    """The request was sent and no process that serves the workflow answered in time;
    :attr:`servers` are the sources it could have gone to."""

    def __init__(self, message: str, workflow: str, servers: tuple[str, ...]) -> None:
        super().__init__(message, workflow)
        self.servers = servers
