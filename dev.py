#!/usr/bin/env python3
"""Bootstrap for a fresh clone: needs only Python 3.10+.

    python3 dev.py demo       # the main job: a live demo on an embedded broker
    python3 dev.py test       # every test: unit, integration, faults, the dashboard in a browser
    python3 dev.py nox ARGS   # any nox session, e.g. `python3 dev.py nox -s bench`

It makes a virtualenv in .venv with nox in it, and runs nox from there; nox
makes the per-session environments and installs the packages itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
NOX_REQUIREMENT = "nox>=2025.2.9,<2027"
COMMANDS = {"demo": ["-s", "demo", "--"], "test": [], "nox": []}
# `test` runs every session in stages: each stage's first sessions in order, and its second
# ones beside them in another nox (the RabbitMQ and NATS families: other brokers, mostly idle
# once up; NATS after RabbitMQ, so two test processes share the two cores, not three);
# the timed fault scenarios and the browser run alone. The connector's suite runs again with
# the sender's fast path off ("on" is in tests and integration).
TEST_STAGES = (
    (
        ["tests", "integration", "connector(fast_path='off')"],
        ["integration-rabbitmq", "faults-rabbitmq", "integration-nats", "faults-nats"],
    ),
    (["faults", "browser"], []),
)


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def ensure_nox() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"dev.py: creating {VENV.name} with nox", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    probe = subprocess.run([python, "-c", "import nox"], capture_output=True, check=False)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", NOX_REQUIREMENT], check=True)
    return python


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 10):  # noqa: UP036 - dev.py must explain itself on old Pythons
        sys.exit("Cascade needs Python 3.10 or newer.")
    if not argv or argv[0] not in COMMANDS:
        sys.exit(__doc__)
    python = ensure_nox()
    reuse = [] if os.environ.get("CI") else ["--reuse-venv=yes"]
    command = [str(python), "-m", "nox", "-f", str(ROOT / "noxfile.py"), *reuse]
    if argv[0] == "test":
        return run_tests(command, argv[1:])
    return subprocess.run([*command, *COMMANDS[argv[0]], *argv[1:]], check=False).returncode


def run_tests(command: list[str], pytest_args: list[str]) -> int:
    """Every stage of TEST_STAGES, whatever fails; non-zero if any session failed."""
    failed = 0
    for foreground, beside in TEST_STAGES:
        side = None
        with tempfile.TemporaryFile() as log:
            if beside:
                side_command = [*command, "-s", *beside, "--", *pytest_args]
                side = subprocess.Popen(side_command, stdout=log, stderr=subprocess.STDOUT)
            sessions = [*command, "-s", *foreground, "--", *pytest_args]
            failed |= subprocess.run(sessions, check=False).returncode
            if side is not None:
                failed |= side.wait()
                log.seek(0)
                print(f"dev.py: {' '.join(beside)} (run beside the above):", flush=True)
                sys.stdout.buffer.write(log.read())
                sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
