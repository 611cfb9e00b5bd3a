#!/usr/bin/env python3
"""Bootstrap for a fresh clone: needs only Python 3.10+.

    python3 dev.py demo          # the main job: a live demo on an embedded broker
    python3 dev.py test          # every test: unit, integration, faults, the dashboard in a browser
    python3 dev.py cascade ARGS  # the `cascade` command the demo installed, e.g. `cascade watch`
    python3 dev.py run FILE ARGS # your script, run by the Python of the environment the demo made
    python3 dev.py nox ARGS      # any nox session, e.g. `python3 dev.py nox -s bench`

It makes a virtualenv in .venv with nox in it, and runs nox from there; nox
makes the per-session environments and installs the packages itself.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
import re
import subprocess
import sys
import threading
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
NOX_REQUIREMENT = "nox[uv]>=2025.2.9,<2027"
UV_REQUIREMENT = "uv>=0.9,<1"  # the sessions' installer (nox finds it beside itself)
COMMANDS = {"demo": ["-s", "demo", "--"], "test": [], "cascade": [], "nox": [], "run": []}
DEMO_BIN = ROOT / ".nox" / "demo" / ("Scripts" if os.name == "nt" else "bin")
DEMO_CASCADE = DEMO_BIN / "cascade"
DEMO_PYTHON = DEMO_BIN / ("python.exe" if os.name == "nt" else "python")
# `test` runs every session in stages, one stage after the other. A stage's lanes run side by
# side, each lane's sessions one after another. The integration suites wait on brokers much of
# the time (two lanes left half of the two cores idle), so they run in three lanes, each broker
# family's suite in a lane of its own; the connector's suite runs again there with the sender's
# fast path off ("on" is in tests and integration), and the compat sessions run the connector's
# and the notifier's tests at their dependencies' lowest and highest pins. The timed fault
# scenarios and the browser keep to two lanes, the mosquitto sessions beside the other families'.
TEST_STAGES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (
        ("integration-rabbitmq", "connector(fast_path='off')"),
        ("tests", "integration-nats"),
        ("integration", "docs", "compat(versions='lowest')", "compat(versions='highest')"),
    ),
    (("faults", "browser"), ("faults-rabbitmq", "faults-nats")),
)


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def ensure_nox() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"dev.py: creating {VENV.name} with nox", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    probe = subprocess.run([python, "-c", "import nox, uv"], capture_output=True, check=False)
    if probe.returncode != 0:
        requirements = [NOX_REQUIREMENT, UV_REQUIREMENT]
        subprocess.run([python, "-m", "pip", "install", "--quiet", *requirements], check=True)
    return python


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py must explain itself on old Pythons
        sys.exit("Cascade needs Python 3.10 or newer.")
    if not argv or argv[0] not in COMMANDS or (argv[0] == "run" and len(argv) < 2):
        sys.exit(__doc__)
    if argv[0] == "run" and DEMO_PYTHON.exists():  # needs no nox: the environment is there
        return run_script(argv[1:])
    python = ensure_nox()
    reuse = [] if os.environ.get("CI") else ["--reuse-venv=yes"]
    command = [str(python), "-m", "nox", "-f", str(ROOT / "noxfile.py"), *reuse]
    if argv[0] == "test":
        return run_tests(command, argv[1:])
    if argv[0] == "cascade":
        return run_cascade(command, argv[1:])
    if argv[0] == "run":
        made = subprocess.run([*command, "-s", "demo", "--install-only"], check=False)
        return made.returncode or run_script(argv[1:])
    return subprocess.run([*command, *COMMANDS[argv[0]], *argv[1:]], check=False).returncode


def run_cascade(command: list[str], args: list[str]) -> int:
    """The demo environment's `cascade` (made first, as `dev.py demo` makes it, if missing)."""
    if not DEMO_CASCADE.exists():
        made = subprocess.run([*command, "-s", "demo", "--install-only"], check=False)
        if made.returncode != 0:
            return made.returncode
    env = {**os.environ, "CASCADE_COMMAND": "python3 dev.py cascade"}
    return subprocess.run([str(DEMO_CASCADE), *args], env=env, check=False).returncode


def run_script(args: list[str]) -> int:
    """``FILE [ARGS]``: a user's script, run by the demo environment's Python (every package of
    the clone installed there, editable, as "everything" installs them), from where dev.py was
    run; its exit code is dev.py's. The `cascade` it names is that environment's too. On POSIX
    dev.py becomes the script (exec: the same pid), so that a supervisor's or a person's signal
    reaches the script itself and nothing is left running when it is killed."""
    env = {**os.environ, "CASCADE_COMMAND": "python3 dev.py cascade"}
    env["PATH"] = os.pathsep.join([str(DEMO_BIN), env.get("PATH", "")])
    command = [str(DEMO_PYTHON), *args]
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command[0], command, env)
    return subprocess.run(command, env=env, check=False).returncode


_PYTEST_TOTALS = re.compile(r"^=+ (?P<counts>\d+ \w+.*) in [\d.]+s")
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")
_SESSION_END = re.compile(r"^nox > Session \S+ (?P<outcome>was successful|skipped|failed|aborted)")
_FAILURE = re.compile(r"^(FAILED|ERROR) \S+")  # pytest's short summary: one line per failed test


@dataclass
class SessionResult:
    """One nox session as `dev.py test` saw it run: its outcome, time and test counts."""

    name: str
    returncode: int = 0
    seconds: float = 0.0
    outcome: str = "did not run"
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # pytest's FAILED / ERROR lines

    def read(self, line: str) -> None:
        """Take what one line of the session's output says (pytest's totals, nox's outcome)."""
        totals = _PYTEST_TOTALS.match(line)
        if totals:
            for number, word in _COUNT.findall(totals["counts"]):
                key = "errors" if word.startswith("error") else word
                self.counts[key] = self.counts.get(key, 0) + int(number)
        failure = _FAILURE.match(line)
        if failure:  # pytest's line, cut to the terminal's width, and conftest.py's whole one
            said = line.rstrip()
            for index, seen in enumerate(self.failures):
                if seen.split(" - ", 1)[0] == failure[0]:
                    self.failures[index] = max(seen, said, key=len)
                    break
            else:
                self.failures.append(said)
        end = _SESSION_END.match(line)
        if end:
            self.outcome = {"was successful": "passed"}.get(end["outcome"], end["outcome"])


def run_lane(
    command: list[str], sessions: tuple[str, ...], *, pytest_args: list[str], prefix: int
) -> list[SessionResult]:
    """Run ``sessions`` one after the other, streaming their output as it comes, each line
    prefixed with its session's name in ``prefix`` columns (lanes side by side; 0: none)."""
    results = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in sessions:
        result = SessionResult(name)
        started = time.monotonic()
        with subprocess.Popen(
            [*command, "-s", name, "--", *pytest_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            errors="replace",
        ) as nox:
            assert nox.stdout is not None
            for line in nox.stdout:
                result.read(line)
                with _PRINTING:
                    sys.stdout.write(f"{name:<{prefix}} | {line}" if prefix else line)
                    sys.stdout.flush()
        result.returncode = nox.returncode
        result.seconds = time.monotonic() - started
        if nox.returncode != 0 and result.outcome in ("passed", "did not run"):
            result.outcome = "failed"
        results.append(result)
    return results


_PRINTING = threading.Lock()


def run_tests(command: list[str], pytest_args: list[str]) -> int:
    """Every stage of TEST_STAGES, whatever fails, then one summary of every session; non-zero
    if any session failed."""
    results: list[SessionResult] = []
    started = time.monotonic()
    for lanes in TEST_STAGES:
        width = max(len(name) for lane in lanes for name in lane) if len(lanes) > 1 else 0
        run = functools.partial(run_lane, command, pytest_args=pytest_args, prefix=width)
        with concurrent.futures.ThreadPoolExecutor(len(lanes)) as pool:
            for lane_results in pool.map(run, lanes):
                results.extend(lane_results)
    print(summary(results, time.monotonic() - started), flush=True)
    return 1 if any(result.returncode for result in results) else 0


def summary(results: list[SessionResult], seconds: float) -> str:
    """The closing table: each session's outcome, time and tests (and the tests that failed);
    then the whole run's line."""
    kinds = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
    width = max((len(result.name) for result in results), default=7)
    lines = ["", "dev.py test: every session"]
    for result in results:
        counts = ", ".join(f"{result.counts[k]} {k}" for k in kinds if result.counts.get(k))
        minutes = f"{result.seconds / 60:5.1f} min"
        lines.append(f"  {result.name:<{width}}  {result.outcome:<8} {minutes}  {counts}")
        lines.extend(f"    {failure}" for failure in result.failures)
    total = {kind: sum(result.counts.get(kind, 0) for result in results) for kind in kinds}
    failed_sessions = sum(1 for result in results if result.returncode)
    lines.append(f"  {len(results)} sessions in {seconds / 60:.1f} min, {failed_sessions} failed")
    lines.append(
        f"tests: {total['passed']} passed, {total['failed'] + total['errors']} failed, "
        f"{total['skipped']} skipped"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
