"""The cases bench_fleet.py measures side by side (issue 51), and the table of their targets.

Each case is one fleet on a private broker of its own, with the bench's scale options:

- ``start``: the readers up, the fleet's runs started at once; measured from its first
  second (no warm-up);
- ``summaries``: the engines' summaries list their runs (as engines send them);
- ``without-10``, ``without-100``: a tenth, and all, of the engines send no summary;
- ``restart``: the dashboard restarted after the warm-up, while the fleet runs: how long
  until its first answer, and until its ``/api/state`` answers are within the targets;
- ``late``: the readers started after the fleet's runs began (the others: before);
- ``issue66``, ``issue66-without``: issue 66's fleet, with summaries and without: one run
  each engine (long enough for the whole bench), every engine's heartbeat and fresh summary
  within the same second every 5 s (a fleet started within a second beats together).

:func:`figures` takes each case's figures from its readers, :func:`targets_table` puts
them in one table beside the targets, each said met or not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fleet_measure import Sampler, median_p95, size
from fleet_readers import PAGE, Dashboard, StatusPoll

STATE_BYTES = 100_000  # /api/state's first answer, at most
STATE_P95_MS = 100.0  # /api/state's p95, at most
STREAM_KBS = 50.0  # one page's stream, at most
SILENCE_S = 2.0  # one page's stream never silent longer (issue 51: a keep-alive is not silence)
DASHBOARD_CPU = 0.5  # of one core, at most
STATUS_S = 2.0  # one `cascade status` call, at most
RECOVERY_POLL = 0.2  # seconds between two /api/state of a restarted dashboard
RECOVERY_P95_OF = 10  # answers a p95 is taken over while the dashboard recovers
RECOVERY_FOR = 30.0  # seconds a restarted dashboard is given at least


@dataclass(frozen=True)
class Case:
    """A case: its name, what it is, and how it differs from a plain run."""

    name: str
    label: str
    without_summaries: float | None = None  # None: the bench's --without-summaries
    warmup: float | None = None  # None: the bench's --warmup
    readers_late: bool = False
    restart: bool = False
    beats_within: float | None = None  # None: heartbeats spread over the interval
    one_run: bool = False  # each engine's run outlasts the bench (else --tasks-per-run)


CASES = {
    case.name: case
    for case in (
        Case("start", "a fleet that starts within one second (readers up)", warmup=0.0),
        Case("summaries", "summaries that list runs"),
        Case("without-10", "10 % of engines without summaries", without_summaries=0.1),
        Case("without-100", "every engine without summaries", without_summaries=1.0),
        Case("restart", "the dashboard restarted mid-run", restart=True),
        Case("late", "readers started after the fleet (late join)", readers_late=True),
        Case(
            "issue66",
            "issue 66's fleet: one run each, every engine beating and "
            "summarised within the same second every 5 s",
            beats_within=1.0,
            one_run=True,
        ),
        Case(
            "issue66-without",
            "issue 66's fleet, no engine sending summaries",
            without_summaries=1.0,
            beats_within=1.0,
            one_run=True,
        ),
    )
}


def parse_cases(text: str) -> list[Case]:
    """``all`` or comma-separated case names, in the order given; SystemExit if unknown."""
    names = list(CASES) if text.strip() == "all" else [n.strip() for n in text.split(",")]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise SystemExit(f"unknown cases {unknown}; known: all, {', '.join(CASES)}")
    return [CASES[name] for name in names]


@dataclass
class Recovery:
    """How a restarted dashboard came back: seconds from its restart to its first answer,
    to the first that counts every engine of the fleet, and to the first answer from which
    the p95 of RECOVERY_P95_OF answers (and each answer's size) is within the targets
    (``None``: not in the time given)."""

    first_answer: float | None = None
    every_engine: float | None = None
    within_target: float | None = None
    given: float = 0.0


def recover(dashboard: Dashboard, seconds: float) -> Recovery:
    """Restart the dashboard (Ctrl-C, then started again on the same broker) and time, from
    its new process's start and for ``seconds`` at most, its ``/api/state`` answers until
    they are within the targets."""
    dashboard.restart()
    began = dashboard.restarted_at  # its start (until it serves) counts
    answers: list[tuple[float, float, int]] = []  # (since the restart, ms, bytes)
    recovery = Recovery(given=seconds)
    with httpx.Client(base_url=dashboard.url, timeout=seconds) as http:
        while time.monotonic() - began < seconds:
            asked = time.perf_counter()
            try:
                answer = http.get("api/state", params=PAGE)
            except httpx.HTTPError:
                time.sleep(RECOVERY_POLL)
                continue
            ms = (time.perf_counter() - asked) * 1000
            answers.append((time.monotonic() - began, ms, len(answer.content)))
            if answer.status_code == 200:
                if recovery.first_answer is None:
                    recovery.first_answer = answers[-1][0]
                engines = answer.json().get("engines_total", 0)
                if recovery.every_engine is None and engines >= dashboard.context.engines:
                    recovery.every_engine = answers[-1][0]
            recovery.within_target = _back_within(answers)
            if recovery.within_target is not None and recovery.every_engine is not None:
                break
            time.sleep(RECOVERY_POLL)
    return recovery


def _back_within(answers: list[tuple[float, float, int]]) -> float | None:
    """When (since the restart) the last RECOVERY_P95_OF answers began whose p95 and sizes
    are within the targets, or ``None``."""
    if len(answers) < RECOVERY_P95_OF:
        return None
    last = answers[-RECOVERY_P95_OF:]
    p95 = median_p95([ms for _, ms, _ in last])[1]
    if p95 <= STATE_P95_MS and all(bytes_ <= STATE_BYTES for *_, bytes_ in last):
        return last[0][0]
    return None


@dataclass
class Figures:
    """A case's figures against the targets (``None``: not measured, its reader absent)."""

    case: Case
    state_bytes: int | None = None
    state_p95_ms: float | None = None
    stream_kbs: float | None = None
    silence_s: float | None = None
    dashboard_cpu: float | None = None
    status_p95_s: float | None = None
    agree: bool = False
    started_first_second: tuple[int, int] | None = None  # runs started in it, engines
    recovery: Recovery | None = None
    notes: list[str] = field(default_factory=list)
    code: str = "this tree"
    """Whose dashboard: this tree's, or a baseline's (``base REV``)."""
    message_us: float | None = None  # the dashboard's CPU per message taken in
    load: float | None = None  # the machine's load average (1 min) at the window's end
    state_cpu_ms: float | None = None  # a page's /api/state's CPU in process (fleet_state_cost)


def figures(
    case: Case, readers: list[Any], sampler: Sampler, agree: bool, recovery: Recovery | None
) -> Figures:
    """The case's figures from its readers once their window is marked."""
    found = Figures(case, agree=agree, recovery=recovery)
    for reader in readers:
        window = reader.window
        if isinstance(reader, Dashboard) and reader.page:
            last = reader.marks[-1]
            found.state_bytes = int(last.state["bytes"])
            states = [t.seconds * 1000 for t in reader.states if window[0] <= t.at <= window[1]]
            found.state_p95_ms = median_p95(states)[1]
            if reader.holder is not None:
                streamed = last.holder[0] - reader.marks[0].holder[0]
                found.stream_kbs = streamed / reader.seconds / 1e3
                found.silence_s = reader.holder.page.longest_silence(window)
            found.dashboard_cpu = sampler.share(reader.name, window)
            received = last.state["connection"]["received"]
            received -= reader.marks[0].state["connection"]["received"]
            if received > 0:
                found.message_us = 1e6 * (reader.cpu[1] - reader.cpu[0]) / received
        elif isinstance(reader, StatusPoll):
            polls = [p.wall for p in reader.polls if window[0] <= p.began <= window[1]]
            found.status_p95_s = median_p95(polls)[1] if polls else None
    return found


def _judged(value: float | None, limit: float, shown: str) -> str:
    if value is None or value != value:
        return "- (not measured)"
    return f"{shown} ({'met' if value <= limit else 'NOT met'})"


def targets_table(found: list[Figures]) -> list[str]:
    """One row a case: each figure beside its target, met or not."""
    lines = [
        f"| case | /api/state first answer (≤ {STATE_BYTES // 1000} kB) "
        f"| /api/state p95 (≤ {STATE_P95_MS:.0f} ms) | a page's stream (≤ {STREAM_KBS:.0f} kB/s) "
        f"| its longest silence (≤ {SILENCE_S:.0f} s) "
        f"| dashboard CPU (≤ {DASHBOARD_CPU:.0%} of a core) | `status` p95 (≤ {STATUS_S:.0f} s) "
        "| views agree with the truth | of its own |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in found:
        cpu = f.dashboard_cpu
        cells = [
            f"{f.case.name}: {f.case.label}" + ("" if f.code == "this tree" else f" ({f.code})"),
            _judged(f.state_bytes, STATE_BYTES, size(f.state_bytes or 0)),
            _judged(f.state_p95_ms, STATE_P95_MS, f"{f.state_p95_ms or 0:.0f} ms"),
            _judged(f.stream_kbs, STREAM_KBS, f"{f.stream_kbs or 0:.1f} kB/s"),
            _judged(f.silence_s, SILENCE_S, f"{f.silence_s or 0:.2f} s"),
            _judged(cpu, DASHBOARD_CPU, f"{100 * (cpu or 0):.0f} %"),
            _judged(f.status_p95_s, STATUS_S, f"{f.status_p95_s or 0:.2f} s"),
            "met" if f.agree else "NOT met",
            "; ".join([*_own(f), *f.notes]) or "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _own(f: Figures) -> list[str]:
    said = []
    if f.started_first_second is not None:
        started, engines = f.started_first_second
        said.append(f"{started:,} runs of {engines:,} engines started in the fleet's first second")
    if f.recovery is not None:
        r = f.recovery
        first, every, back = (
            f"not in {r.given:.0f} s" if t is None else f"in {t:.2f} s"
            for t in (r.first_answer, r.every_engine, r.within_target)
        )
        said.append(f"after its restart: first answer {first}, every engine counted {every}, "
                    f"/api/state p95 and size back within target {back}")  # fmt: skip
    return said


def aims_table(found: list[Figures]) -> list[str]:
    """Issue 66's two aims, each case's baseline beside this tree's (in the order run), with
    what the latency depends on: the machine's load, and the dashboard's CPU per message and
    per ``/api/state`` (in process), which a busy machine changes little."""
    lines = [
        f"| case | dashboard | /api/state p95 (≤ {STATE_P95_MS:.0f} ms) "
        f"| a page's stream (≤ {STREAM_KBS:.0f} kB/s) | dashboard CPU (of a core) "
        "| CPU per message | a page's /api/state CPU, in process | load average |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def shown(value: float | None, shape: str) -> str:
        return "-" if value is None or value != value else shape.format(value)

    for f in found:
        cells = [
            f.case.name,
            f.code,
            _judged(f.state_p95_ms, STATE_P95_MS, f"{f.state_p95_ms or 0:.0f} ms"),
            _judged(f.stream_kbs, STREAM_KBS, f"{f.stream_kbs or 0:.1f} kB/s"),
            shown(None if f.dashboard_cpu is None else 100 * f.dashboard_cpu, "{:.0f} %"),
            shown(f.message_us, "{:.0f} µs"),
            shown(f.state_cpu_ms, "{:.1f} ms"),
            shown(f.load, "{:.1f}"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines
