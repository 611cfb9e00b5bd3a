"""`python3 dev.py test`'s closing summary: every session's outcome and the whole run's tests."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dev"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_session_reads_each_pytest_run_and_its_outcome() -> None:
    """Two pytest runs in one session add up; nox's last line gives the outcome."""
    dev = _dev()
    result = dev.SessionResult("integration")
    for line in (
        "===== 10 passed, 2 skipped in 3.10s =====\n",
        "FAILED tests/test_a.py::test_one - AssertionError: 1 != 2\n",
        "ERROR tests/test_b.py::test_two - TimeoutError\n",
        "=== 1 failed, 4 passed, 1 error, 1 xfailed in 12.00s (0:00:12) ===\n",
        "nox > Session integration failed.\n",
    ):
        result.read(line)
    assert result.counts == {"passed": 14, "skipped": 2, "failed": 1, "errors": 1, "xfailed": 1}
    assert result.outcome == "failed"
    assert result.failures == [
        "FAILED tests/test_a.py::test_one - AssertionError: 1 != 2",
        "ERROR tests/test_b.py::test_two - TimeoutError",
    ]


def test_the_summary_lists_every_session_and_ends_with_the_runs_counts() -> None:
    """One line per session (a failed one's tests under it), then a closing line CI reads as
    the run's count."""
    dev = _dev()
    ok = dev.SessionResult("tests", seconds=60, outcome="passed", counts={"passed": 5})
    bad = dev.SessionResult(
        "faults",
        returncode=1,
        seconds=30,
        outcome="failed",
        counts={"passed": 2, "errors": 1},
        failures=["ERROR tests/faults/test_x.py::test_y - TimeoutError"],
    )
    skipped = dev.SessionResult("integration-nats", outcome="skipped")
    text = dev.summary([ok, bad, skipped], 95.0)
    lines = text.splitlines()
    assert any(line.split()[:2] == ["tests", "passed"] for line in lines)
    faults = next(i for i, line in enumerate(lines) if line.split()[:2] == ["faults", "failed"])
    assert lines[faults + 1] == "    ERROR tests/faults/test_x.py::test_y - TimeoutError"
    assert any(line.split()[:2] == ["integration-nats", "skipped"] for line in lines)
    assert "3 sessions in 1.6 min, 1 failed" in text
    assert lines[-1] == "tests: 7 passed, 1 failed, 0 skipped"


def test_a_lane_streams_each_sessions_output_with_its_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Side-by-side lanes prefix every line with the session that printed it."""
    dev = _dev()
    fake_nox = [
        sys.executable,
        "-c",
        "import sys; name = sys.argv[2]; print('== 3 passed in 0.5s =='); "
        "print(f'nox > Session {name} was successful in 1 seconds.')",
    ]
    results = dev.run_lane(fake_nox, ("one", "two"), pytest_args=[], prefix=3)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "one | == 3 passed in 0.5s =="
    assert out[3] == "two | nox > Session two was successful in 1 seconds."
    assert [(r.name, r.outcome, r.counts) for r in results] == [
        ("one", "passed", {"passed": 3}),
        ("two", "passed", {"passed": 3}),
    ]


def test_a_failed_test_is_named_with_the_first_line_of_its_error_however_narrow_the_terminal(
    tmp_path: Path,
) -> None:
    """Outside CI pytest cuts its summary lines to the terminal's width (``- R...``); the
    repository's conftest.py adds each failure's whole first line, which the session keeps."""
    test_file = tmp_path / "test_narrow.py"
    test_file.write_text(
        "def test_a_rather_long_name_that_fills_most_of_an_eighty_column_terminal():\n"
        "    raise RuntimeError('nats-server c was not ready in time\\nsecond line')\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "BUILD_NUMBER")}
    env.update(COLUMNS="80", PYTHONPATH=str(ROOT))
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
         str(test_file)],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stdout + ran.stderr
    pytests_own = ran.stdout.split("short test summary info")[-1].splitlines()[1]
    assert "RuntimeError" not in pytests_own, pytests_own  # the case this guards: pytest cut it
    result = _dev().SessionResult("faults-nats")
    for line in ran.stdout.splitlines(keepends=True):
        result.read(line)
    assert result.failures == [
        "FAILED test_narrow.py::test_a_rather_long_name_that_fills_most_of_an_eighty_column_"
        "terminal - RuntimeError: nats-server c was not ready in time"
    ]


def test_run_runs_a_users_script_in_the_demos_environment(tmp_path: Path) -> None:
    """`python3 dev.py run FILE ARGS`: the script run by the demo environment's Python (here a
    link to this one), its arguments as given, from where dev.py was run, its exit code dev.py's,
    the environment's `cascade` first on its PATH; no nox needed once the environment is made."""
    clone = tmp_path / "clone"
    demo_bin = clone / ".nox" / "demo" / "bin"
    demo_bin.mkdir(parents=True)
    (demo_bin / "python").symlink_to(sys.executable)
    (clone / "dev.py").write_bytes((ROOT / "dev.py").read_bytes())
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    (elsewhere / "etl.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps([sys.executable, sys.argv[1:], os.getcwd(),\n"
        "                  os.environ['PATH'].split(os.pathsep)[0]]))\n"
        "sys.exit(3)\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(clone / "dev.py"), "run", "etl.py", "--day", "2026-11-28", "a b"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    ran_by, args, cwd, first_on_path = json.loads(result.stdout)
    assert ran_by == str(demo_bin / "python")
    assert args == ["--day", "2026-11-28", "a b"]
    assert cwd == str(elsewhere)
    assert first_on_path == str(demo_bin)
    assert not (clone / ".venv").exists()  # nox was not needed
    bare = subprocess.run(
        [sys.executable, str(clone / "dev.py"), "run"], capture_output=True, text=True, check=False
    )
    assert bare.returncode == 1
    assert "dev.py run FILE" in bare.stderr


@pytest.mark.skipif(os.name != "posix", reason="exec replaces the process on POSIX only")
def test_run_becomes_the_script_so_killing_its_pid_leaves_nothing_running(tmp_path: Path) -> None:
    """The pid a shell or a supervisor gets for `python3 dev.py run FILE` is the script's own:
    `kill -9` of it ends the script, with no orphan left serving."""
    clone = tmp_path / "clone"
    demo_bin = clone / ".nox" / "demo" / "bin"
    demo_bin.mkdir(parents=True)
    (demo_bin / "python").symlink_to(sys.executable)
    (clone / "dev.py").write_bytes((ROOT / "dev.py").read_bytes())
    (tmp_path / "serve.py").write_text(
        "import os, sys\nprint(os.getpid(), flush=True)\nsys.stdin.read()\n",
        encoding="utf-8",
    )
    with subprocess.Popen(
        [sys.executable, str(clone / "dev.py"), "run", "serve.py"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as script:
        assert script.stdout is not None
        serving = int(script.stdout.readline())
        script.kill()
        assert script.wait(timeout=30) == -signal.SIGKILL
        if serving != script.pid:  # the orphan this guards against: not left behind here
            os.kill(serving, signal.SIGKILL)
        assert serving == script.pid
