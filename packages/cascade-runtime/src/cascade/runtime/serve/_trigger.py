"""``Trigger``: a served workflow that starts on an event (the end of another run, a signal,
new files), and the events a trigger's ``params`` are given (docs/triggers.md)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, get_args

from cascade.interfaces.wire import EndStatus, ServedTrigger, TriggerKind, check_workflow_name

from ._file_events import FileEvent

__all__ = [
    "MAX_TRIGGER_DEPTH",
    "Fired",
    "RunEnd",
    "SignalEvent",
    "Trigger",
    "TriggerEvent",
]

MAX_TRIGGER_DEPTH = 10
"""The most triggered runs a chain of ``after`` triggers starts one after another (a trigger
that starts its own workflow, or two that start each other's): a run end past it starts
nothing, counted and said."""
_MIN_PERIOD = 1.0
_STATUSES = (*get_args(EndStatus), "any")


@dataclass(frozen=True)
class RunEnd:
    """An ``after`` trigger's event: the served run ``run_id`` of ``workflow`` ended with
    ``status`` (``Succeeded``, ``Failed`` or ``Cancelled``) at ``source``, run with
    ``params``."""

    run_id: str
    workflow: str
    status: str
    params: Mapping[str, Any]
    source: str


@dataclass(frozen=True)
class SignalEvent:
    """A ``signal`` trigger's event: a message on the signal ``topic`` (the trigger's, as
    ``cs.recv`` names it), its ``payload`` (a JSON object)."""

    topic: str
    payload: Mapping[str, Any]


TriggerEvent = RunEnd | SignalEvent | FileEvent
"""What a trigger's ``params`` callable is given."""


@dataclass(frozen=True)
class Trigger:
    """Start a served workflow on an event, once across the servers of the trigger in the org
    and project (docs/triggers.md). One of:

    - ``after``: a served workflow's name; each of its runs in the org and project that ends
      with ``status`` (``"Succeeded"``, the default; ``"Failed"``, ``"Cancelled"`` or
      ``"any"``) is an event (a :class:`RunEnd`);
    - ``signal``: a topic under the org's and project's signals (as ``cs.recv`` names it, MQTT
      wildcards allowed); each message on it is an event (a :class:`SignalEvent`);
    - ``files``: a glob in an fsspec store (``"s3://bucket/in/*.csv"``, ``"/data/in/*.csv"``),
      listed every ``period`` seconds (at least 1; 30 by default); each new or changed file is
      an event (a ``FileEvent``: ``path``, ``version``, ``size``, ``modified``); the files there
      at the first listing are events only with ``catchup=True``. ``storage_options``: the
      store's (fsspec's).

    ``workflow``: the served workflow it starts (the trigger's own name by default).
    ``params``: the run's params: a mapping, or a callable given the event that returns one.
    ``max_per_minute``: the events a server takes a minute at most (a flood beyond it is
    dropped, counted and said); ``max_waiting``: the events that wait at most while every
    server is full (beyond it, dropped, counted and said). Bad values raise ``ValueError`` (or
    ``TypeError``) when the trigger is made.
    """

    after: str | None = None
    status: Literal["Succeeded", "Failed", "Cancelled", "any"] = "Succeeded"
    signal: str | None = None
    files: str | None = None
    period: float | timedelta = 30.0
    catchup: bool = False
    storage_options: Mapping[str, Any] | None = None
    workflow: str | None = None
    params: Mapping[str, Any] | Callable[[Any], Mapping[str, Any]] = field(default_factory=dict)
    max_per_minute: int = 600
    max_waiting: int = 1000

    def __post_init__(self) -> None:
        given = [n for n in ("after", "signal", "files") if getattr(self, n) is not None]
        if len(given) != 1:
            said = ", ".join(given) if given else "none"
            raise ValueError(f"a Trigger takes one of after, signal and files, not {said}")
        if self.after is not None:
            check_workflow_name(self.after)
        if self.status not in _STATUSES:
            raise ValueError(f"status is one of {', '.join(_STATUSES)}, not {self.status!r}")
        if self.status != "Succeeded" and self.after is None:
            raise ValueError("status goes with after=: it says which run ends start it")
        if self.signal is not None and (
            not isinstance(self.signal, str) or not self.signal or self.signal.startswith("/")
        ):
            raise ValueError(
                f"signal is a topic, non-empty, not starting with '/': {self.signal!r}"
            )
        if self.files is not None and (not isinstance(self.files, str) or not self.files):
            raise ValueError(f"files is a glob (s3://bucket/in/*.csv), not {self.files!r}")
        seconds = self.period_seconds
        if not math.isfinite(seconds) or seconds < _MIN_PERIOD:
            raise ValueError(f"period is at least {_MIN_PERIOD:g} s, not {self.period}")
        if (self.catchup or self.storage_options) and self.files is None:
            raise ValueError("catchup and storage_options go with files=")
        if self.workflow is not None:
            check_workflow_name(self.workflow)
        if not callable(self.params) and not isinstance(self.params, Mapping):
            raise TypeError(f"params is a mapping or a callable of the event, not {self.params!r}")
        for name in ("max_per_minute", "max_waiting"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} is a whole number, at least 1, not {value!r}")

    @property
    def period_seconds(self) -> float:
        """``period`` in seconds."""
        period = self.period
        return period.total_seconds() if isinstance(period, timedelta) else float(period)

    @property
    def kind(self) -> TriggerKind:
        """What it starts on."""
        return "after" if self.after else "signal" if self.signal else "files"

    def on(self) -> str:
        """What it starts on, said: ``etl Succeeded``, a signal's topic, a glob."""
        if self.after is not None:
            return f"{self.after} {self.status}"
        return self.signal or self.files or ""

    def hears(self, ended: RunEnd) -> bool:
        """Whether the end ``ended`` is one of its events."""
        return ended.workflow == self.after and self.status in ("any", ended.status)

    def params_of(self, event: TriggerEvent) -> dict[str, Any]:
        """The run's params for ``event``; ``TypeError`` for a callable that returns no
        mapping (what it raises, it raises)."""
        params = self.params(event) if callable(self.params) else self.params
        if not isinstance(params, Mapping):
            raise TypeError(f"params(event) returned {type(params).__name__}, not a mapping")
        return dict(params)

    def described(self, name: str) -> ServedTrigger:
        """What the announcement says of it (its state added by the server)."""
        return ServedTrigger(
            name=name, workflow=self.workflow or name, kind=self.kind, on=self.on()[:1024]
        )


@dataclass(frozen=True)
class Fired:
    """What a triggered run's origin says of its trigger: the ``trigger``, its ``event`` said,
    the run it followed (``followed_run``) and its ``depth``."""

    trigger: str
    event: str
    followed_run: str | None
    depth: int
