"""Odd values of every option end in one line and an exit code, never a traceback."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cascade.cli import app
from cascade.cli.plumbing import BrokerOptions, CliContext
from cascade.connector_kit.testing import InMemoryBroker, InMemoryConnector
from cascade.interfaces import Connector

# What a shell can hand over: numbers in every form and out of every range, empty and
# blank strings, bytes that are not UTF-8 (lone surrogates), escapes, very long words.
_ODD = [
    "nan", "inf", "-inf", "1e308", "-1e308", "1e-9", "-1", "0", "1", "0x10", "1_000", "١٢",
    "", " ", "\udcff", "\x1b[2J", "a" * 300, "10/x", "1e3", "task:", "task:\udcff",
    "task:\x1b]0;T\x07", "global", "task:a*", "[::1]:1", "h:0", "h:99999", "h:", ":1",
]  # fmt: skip
odd = st.one_of(st.sampled_from(_ODD), st.text(st.characters(codec=None), max_size=20))

_PASSWORD_WARNING = (
    "cascade: warning: --password on the command line is visible to every user of this "
    "machine (ps, /proc/PID/cmdline); give it in $CASCADE_MQTT_PASSWORD instead"
)
_BROKER = ["--host", "--port", "--username", "--password", "--timeout"]
# Each command with its options that take a value (flags are drawn apart).
_COMMANDS: dict[str, tuple[list[str], list[str]]] = {
    "status": (["--offline-max-age", *_BROKER], ["--json", "--all"]),
    "pause": (["--ttl", *_BROKER], []),
    "limit": (["--concurrency", "--rate", "--ttl", *_BROKER], []),
    "resume": (["--type", *_BROKER], []),
    "forget": (["--offline-older-than", *_BROKER], ["--force"]),
    # --duration last and short, so that a valid run ends
    "watch": (["--project", "--run", "--count", "--keep-runs", "--keep-for", *_BROKER], ["--all"]),
}
_WITH_ARGUMENT = {"pause", "limit", "resume", "forget"}


@st.composite
def invocations(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(_COMMANDS)))
    options, flags = _COMMANDS[command]
    args = [command]
    if command in _WITH_ARGUMENT and draw(st.booleans()):
        args.append(draw(odd).lstrip("-") or "x")
    for option in draw(st.lists(st.sampled_from(options), max_size=4, unique=True)):
        args += [option, draw(odd)]
    args += draw(st.lists(st.sampled_from(flags), max_size=2, unique=True)) if flags else []
    if command == "watch":
        args += ["--duration", draw(st.sampled_from(["0.01", "nan", "inf", "-1", "x", "1e-9"]))]
    return args


def _factory(options: BrokerOptions) -> Connector:
    return InMemoryConnector(InMemoryBroker(), presence=False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invocations())
def test_odd_options_give_an_exit_code_and_one_line(args: list[str]) -> None:
    """Every input error is one line on stderr and exit 2; nothing ends in a traceback."""
    result = CliRunner().invoke(app, args, obj=CliContext(connector_factory=_factory))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args!r} raised {result.exception!r}"
    )
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:  # one line, besides the warning a --password given gets
        lines = [line for line in result.stderr.splitlines() if line != _PASSWORD_WARNING]
        assert len(lines) == 1, (args, result.stderr)
        assert lines[0].startswith("cascade"), (args, result.stderr)
        assert "Traceback" not in result.output


def test_a_usage_error_names_the_command_and_its_help() -> None:
    """One line: the command, what is wrong with which option, and where the help is."""
    result = CliRunner().invoke(app, ["status", "--timeout", "nan"])
    assert result.exit_code == 2
    assert result.stderr == (
        "cascade status: invalid value for '--timeout': must be a number, not nan "
        "(see cascade status --help)\n"
    )
