"""Broker options shared by every command, and the connector made from them."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cascade.interfaces import ConnectError

from ._address import split_host_port

if TYPE_CHECKING:
    import ssl

    from cascade.interfaces import Connector

__all__ = [
    "MAX_TIMEOUT",
    "BrokerOptions",
    "StopAfter",
    "ConnectorFactory",
    "broker_options",
    "finite",
    "mqtt_connector",
    "tls_of",
]

MAX_TIMEOUT = 3600.0
"""The longest ``--timeout`` accepted, in seconds."""
MAX_DURATION = 10 * 365 * 86400.0
"""The longest ``--duration`` (10 years): a bound, so that no number overflows below."""
MAX_COUNT = 1_000_000_000
"""The largest count an option takes (``--limit``, ``--count``, ``--queue``...): an integer
beyond 64 bits would overflow SQLite's, and nobody means more."""


def finite(value: float | None) -> float | None:
    """A number option's check: a number, never nan or an infinity (click's ranges let nan in)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a number, not {value}")
    return value


StopAfter = Annotated[
    float | None,
    typer.Option(
        "--duration", min=0, max=MAX_DURATION, callback=finite, help="Stop after this many seconds."
    ),
]
"""``--duration``: how long a command that runs until stopped (watch, record) runs at most."""


@dataclass(frozen=True)
class BrokerOptions:
    """Where the broker is and how to log in; ``host=None`` means localhost (or, for
    ``demo``, an embedded broker). ``other_hosts``: the broker's further nodes
    (``--host a:1883,b:1883``), each ``host:port``, tried in turn after ``host``.

    The fields after ``timeout`` are not options of every command: `cascade
    record` sets them from its own (a stable client id with a persistent
    session, the MQTT version).
    """

    host: str | None = None
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    timeout: float = 5.0
    client_id: str | None = None
    session_expiry: float | None = None
    protocol: str = "3.1.1"
    other_hosts: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        """``host:port`` for messages (``a:1883,b:1883`` with several nodes)."""
        return ",".join(self.hosts)

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every node as ``host:port`` (``[v6 address]:port``), in the order they are tried."""
        host = self.host or "localhost"
        first = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        return (first, *self.other_hosts)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``--tls`` / ``--ca-file``, or ``None`` for plain TCP."""
        if not (self.tls or self.ca_file):
            return None
        import ssl  # only a command given --tls pays for it

        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


ConnectorFactory = Callable[[BrokerOptions], "Connector"]
DEFAULT_BROKER = BrokerOptions()


def mqtt_connector(options: BrokerOptions) -> Connector:
    """An MqttConnector for a CLI: no presence of its own, failing fast on connect; on the
    plain layout whatever ``$CASCADE_SOURCED_TOPICS`` says (it reads and steers: it publishes
    no telemetry, so the variable, an engine's, is not read; a bad value cannot stop it).

    Raises :class:`~cascade.interfaces.ConnectError` when the TLS settings cannot be used
    (an unreadable or invalid ``--ca-file``).
    """
    from cascade.connectors.mqtt import MqttConnector

    tls = tls_of(options)
    where: dict[str, Any] = {"hostname": options.host or "localhost", "port": options.port}
    if options.other_hosts:
        where = {"hosts": options.hosts}
    return MqttConnector(
        **where,
        username=options.username,
        password=options.password,
        tls=tls,
        connect_timeout=options.timeout,
        flush_timeout=options.timeout,
        presence=False,
        sourced_topics=False,
        client_id=options.client_id,
        session_expiry=options.session_expiry,
        protocol=options.protocol,
    )


def tls_of(options: BrokerOptions) -> ssl.SSLContext | bool:
    """The connector's ``tls`` for ``--tls`` / ``--ca-file`` (``False``: plain TCP);
    :class:`~cascade.interfaces.ConnectError` when they cannot be used."""
    try:
        return options.ssl_context() or False
    except OSError as exc:  # ssl.SSLError is an OSError
        reason = f"cannot set up TLS with CA file {options.ca_file}: {exc}"
        raise ConnectError(options.host or "localhost", options.port, reason) from None


def _protocol(value: str) -> str:
    if value not in ("3.1.1", "5"):
        raise typer.BadParameter(f"must be 3.1.1 or 5 (the MQTT version), not {value!r}")
    return value


# The typer parameters behind each BrokerOptions field, in the order --help lists them.
_PARAMETERS: dict[str, Any] = {
    "host": Annotated[
        str | None,
        typer.Option(
            envvar="CASCADE_MQTT_HOST",
            help="Broker host, or host:port (default: localhost); several nodes of one "
            "broker as a comma list, a:1883,b:1883, tried in turn.",
        ),
    ],
    "port": Annotated[
        int, typer.Option(envvar="CASCADE_MQTT_PORT", min=1, max=65535, help="Broker port.")
    ],
    "username": Annotated[
        str | None, typer.Option(envvar="CASCADE_MQTT_USERNAME", help="Broker user.")
    ],
    "password": Annotated[
        str | None,
        typer.Option(
            envvar="CASCADE_MQTT_PASSWORD",
            help="Broker password; better $CASCADE_MQTT_PASSWORD: `ps` shows a command line "
            "to every user of the machine (a warning says so).",
        ),
    ],
    "tls": Annotated[bool, typer.Option("--tls", help="Connect with TLS (system CA store).")],
    "ca_file": Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="CA bundle for TLS; implies --tls."),
    ],
    "timeout": Annotated[
        float,
        typer.Option(
            min=0.1, max=MAX_TIMEOUT, callback=finite, help="Seconds to wait for the broker."
        ),
    ],
    "protocol": Annotated[
        str,
        typer.Option(
            envvar="CASCADE_MQTT_PROTOCOL",
            callback=_protocol,
            help="MQTT version, 3.1.1 or 5 (with 5 a broker can say it refused a message).",
        ),
    ],
}

_F = TypeVar("_F", bound=Callable[..., Any])


def broker_options(command: _F) -> _F:
    """Give a command the common broker options; it receives them as ``broker: BrokerOptions``."""
    signature = inspect.signature(command, eval_str=True)
    own = [p for name, p in signature.parameters.items() if name != "broker"]
    added = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=getattr(DEFAULT_BROKER, f.name),
            annotation=_PARAMETERS[f.name],
        )
        for f in fields(BrokerOptions)
        if f.name in _PARAMETERS
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {
            f.name: kwargs.pop(f.name) for f in fields(BrokerOptions) if f.name in _PARAMETERS
        }
        # the command's typer.Context (some typer versions pass their vendored click's class)
        context = next((a for a in (*args, *kwargs.values()) if _is_context(a)), None)
        host, port, others = _nodes(values["host"], values["port"], context)
        values["host"], values["port"] = host, port
        if values["password"] is not None and _source(context, "password") == _COMMAND_LINE:
            typer.echo(f"cascade: warning: {_PASSWORD_SHOWN}", err=True)
        return command(*args, broker=BrokerOptions(**values, other_hosts=others), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
    return wrapper  # type: ignore[return-value]


# Where a parameter's value came from, lowest precedence first.
_LEVELS = ("DEFAULT", "DEFAULT_MAP", "ENVIRONMENT", "PROMPT", "COMMANDLINE")


_COMMAND_LINE = _LEVELS.index("COMMANDLINE")
_PASSWORD_SHOWN = (
    "--password on the command line is visible to every user of this machine (ps, "
    "/proc/PID/cmdline); give it in $CASCADE_MQTT_PASSWORD instead"
)
"""What every command says on stderr when given ``--password`` (the variable works alike)."""


def _is_context(value: object) -> bool:
    return callable(getattr(value, "get_parameter_source", None))


def _source(context: Any, name: str) -> int:
    source = context.get_parameter_source(name) if context is not None else None
    return _LEVELS.index(source.name) if source is not None and source.name in _LEVELS else 0


def _nodes(hosts: str | None, port: int, context: Any) -> tuple[str | None, int, tuple[str, ...]]:
    """``--host a:1883,b``: the first node's host and port, and the others as ``host:port``.

    Each entry as :func:`_address` takes one; an empty entry or a node named
    twice exits 2.
    """
    if hosts is None or "," not in hosts:
        return (*_address(hosts, port, context), ())
    entries = [entry.strip() for entry in hosts.split(",")]
    if not all(entries):
        raise typer.BadParameter(
            f"{hosts!r} has an empty entry: give nodes as a comma list, a:1883,b:1883",
            param_hint="'--host'",
        )
    for entry in entries:
        if any(c.isspace() for c in entry):
            raise typer.BadParameter(
                f"{entry!r} in {hosts!r} is not a host name or address", param_hint="'--host'"
            )
    nodes = [_address(entry, port, context) for entry in entries]
    named = [f"[{h}]:{p}" if ":" in str(h) else f"{h}:{p}" for h, p in nodes]
    if len(set(named)) != len(named):
        raise typer.BadParameter(f"{hosts!r} names a node twice", param_hint="'--host'")
    (host, first_port), *_ = nodes
    return host, first_port, tuple(named[1:])


def _address(host: str | None, port: int, context: Any) -> tuple[str | None, int]:
    """``--host host:port``: the port it names, unless ``--port`` says otherwise at a higher
    level (a flag beats ``CASCADE_MQTT_*``); two different ports at one level exit 2."""
    if host is None:
        return None, port
    try:
        name, named_port = split_host_port(host)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--host'") from None
    if named_port is None or named_port == port:
        return name, port
    host_level, port_level = _source(context, "host"), _source(context, "port")
    if port_level == 0 or port_level < host_level:
        return name, named_port
    if port_level > host_level:
        return name, port
    raise typer.BadParameter(
        f"{host!r} names port {named_port} but --port is {port}; "
        f"give the port once: --host {name} --port {named_port}, or --host {host}",
        param_hint="'--host'",
    )
