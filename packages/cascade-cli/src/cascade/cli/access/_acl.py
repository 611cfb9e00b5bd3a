"""What each broker login of a roles file may read and write, as MQTT topic filters: the part
of `cascade acl` both brokers share (:mod:`._acl_mosquitto`, :mod:`._acl_rabbitmq` write it).

Runs are read by their org and project (telemetry, logs and an engine's summaries per org and
project, ``{prefix}/summary/{org}/{project}/{source}``, carry both levels), and
commands' answers by their org (``{prefix}/reply/{org}/{id}/{source}``); constraints are set by
their scope path (``global``, ``task:<glob>``, ``schedule:<name>``, ``workflow:<name>`` or
``trigger:<name>``, fleet-wide, or placed in an org or a project: ``org/acme/task/etl_%2A``),
each scope's on its own topics only (engines take a constraint's scope and type from its
topic): an operator's ``task:``, ``schedule:``, ``workflow:`` and ``trigger:`` scopes in its
grant's orgs and projects. Cancels and
decisions on held tasks name the run's org and project
(``{prefix}/command/{org}/{project}/{run_id}/cancel`` and ``.../decide``; not the task), and
so do starts (``{prefix}/start/{org}/{project}/{workflow}``, or ``.../{source}`` addressed to
one process; a backfill is a start) and announcements
(``{prefix}/served/{org}/{project}/{source}``): an operator over ``org:`` or ``project:`` scopes
cancels, decides and starts in those only (which task a decision names, the broker cannot
see: the dashboard checks it), and an engine login serves, announces, claims its schedules'
slots (``{prefix}/schedule/{org}/{project}/{schedule}/{slot}``) and its triggers' events
(``{prefix}/trigger/{org}/{project}/{trigger}/{key}``), says its runs' ends
(``{prefix}/served/{org}/{project}/{source}/ended``) and takes commands in its own
scopes only (``[broker.engines]``), each announcement as itself. Snapshot requests
(``{prefix}/command/{run_id}/snapshot``) carry no org: any reader may ask; everyone reads the
announcements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cascade.control.access import Grant, GrantScope, Role, Roles
from cascade.interfaces import (
    CascadeError,
    constraint_topic,
    encode_level,
    validate_id,
    validate_prefix,
)
from cascade.interfaces.notes import cleared_topic

__all__ = ["AclError", "LoginRights", "broker_rights"]

READ, WRITE = "read", "write"
_TYPES = ("pause", "concurrency", "rate_limit")


class AclError(CascadeError, ValueError):
    """A roles file (or a prefix) that a broker's ACL cannot say safely: it names the grant."""


@dataclass
class LoginRights:
    """One login's rights: MQTT filters it may ``read`` (subscribe to and receive) and
    ``write`` (publish to), and ``roles``, one line each, saying why (for the ACL's comments)."""

    read: set[str] = field(default_factory=set)
    write: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)

    def grant(self, access: str, *filters: str) -> None:
        """Add ``filters`` to the ``read`` or ``write`` side (``readwrite``: both)."""
        for side in (READ, WRITE):
            if side in access:
                getattr(self, side).update(filters)


# What a name must not hold in a broker's ACL, as a function of the name that says why not.
NameCheck = Callable[[str], "str | None"]


def identity_filters(prefix: str, level: str) -> list[tuple[str, str]]:
    """What a login may write as itself wherever its roles are, ``level`` being its login as
    a topic level (:func:`~cascade.interfaces.encode_level` of it; mosquitto's ``pattern``
    lines: ``%u``). Its runs' telemetry and logs are its scopes' only (:func:`_runs_of`)."""
    login = level
    return [
        (WRITE, f"{prefix}/reply/+/+/{login}"),
        ("readwrite", f"{prefix}/status/{login}"),
        (WRITE, f"{prefix}/summary/{login}"),
        ("readwrite", f"{prefix}/_marker/{login}/#"),
        (WRITE, f"{prefix}/issued/{login}"),
    ]


def broker_rights(
    roles: Roles,
    prefix: str,
    *,
    exact_retained: bool,
    check_name: NameCheck,
    check_login: NameCheck | None = None,
    name: str = "the roles file",
) -> dict[str, LoginRights]:
    """Every login's rights under ``roles``, by login, beside the rights each has as itself
    (:func:`identity_filters`, which the caller adds as its format allows).

    ``exact_retained``: a broker that sends retained messages to exact topics only
    (RabbitMQ), whose readers also read the constraints index and write the roll call, and
    whose writers write the index. ``check_name`` says why a topic level (a login's, an
    org's, a project's, each encoded as the topics encode them, or a scope's) cannot stand in
    the format, or ``None``; ``check_login``, why a login cannot be named in it. Raises
    :class:`AclError` naming the grant (or the ``[broker]`` key) and why.
    """
    try:
        validate_prefix(prefix)
    except ValueError as exc:
        raise AclError(f"--prefix: {exc}") from None
    _checked(prefix, check_name, "--prefix")
    rights: dict[str, LoginRights] = {}

    def of(login: str, where: str) -> LoginRights:
        _check_login(login, check_name, check_login, where)
        return rights.setdefault(login, LoginRights())

    for login in roles.broker.engines:
        where = f"{name}, [broker] engines"
        scopes = roles.broker.scopes_of(login)
        _engine(of(login, where), prefix, exact_retained, login, scopes, check_name, where)
    kinds = (("recorders", _recorder), ("dashboards", _dashboard), ("notifiers", _notifier))
    for key, add in kinds:
        for login in getattr(roles.broker, key):
            add(of(login, f"{name}, [broker] {key}"), prefix, exact_retained)
    for number, grant in enumerate(roles.grants, 1):
        where = f"{name}, grant {number}"
        for login in sorted(grant.broker_users):
            _person(of(login, where), login, grant, prefix, exact_retained, check_name, where)
    return rights


def _check_login(
    login: str, check_name: NameCheck, check_login: NameCheck | None, where: str
) -> None:
    try:
        validate_id(login, "a broker login")
    except ValueError as exc:
        raise AclError(f"{where}: {exc}") from None
    if any(char in "/+#%" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in login):
        raise AclError(
            f"{where}: broker login {login!r} holds '/', '+', '#', '%' or a control character: "
            "a login is the source level of the topics it publishes, where a '%' would read "
            "as another login's encoded character and the others cannot stand"
        )
    if check_login is not None:
        _checked(login, check_login, f"{where}: broker login")
    _checked(encode_level(login), check_name, f"{where}: broker login's topic level")


def _checked(text: str, check_name: NameCheck, what: str) -> str:
    why = check_name(text)
    if why is not None:
        raise AclError(f"{what} {text!r} {why}")
    return text


def _reads(prefix: str, exact_retained: bool) -> list[tuple[str, str]]:
    """What every reader reads (beyond runs) and writes: constraints, statuses, its marker, and
    snapshot requests for runs it joined late."""
    said = [
        (READ, f"{prefix}/constraints/#"),
        (READ, f"{prefix}/status/#"),
        (READ, f"{prefix}/served/+/+/+"),
        (WRITE, f"{prefix}/command/+/snapshot"),
        ("readwrite", f"{prefix}/_marker/#"),
    ]
    if exact_retained:
        said += [
            (READ, f"{prefix}/index/constraints"),
            (READ, f"{prefix}/index/constraints/+"),
            (WRITE, f"{prefix}/rollcall"),
        ]
    return said


def _everything(rights: LoginRights, prefix: str, exact_retained: bool) -> None:
    for access, topic_filter in _reads(prefix, exact_retained):
        rights.grant(access, topic_filter)
    for kind in ("telemetry", "logs", "summary"):
        rights.grant(READ, f"{prefix}/{kind}/#")


def _steers_everything(rights: LoginRights, prefix: str, exact_retained: bool) -> None:
    rights.grant(WRITE, f"{prefix}/constraints/#", f"{prefix}/cleared/#")
    _cancels(rights, prefix, ("+", "+"), "#")
    _starts(rights, prefix, ("+", "+"))
    if exact_retained:
        rights.grant(WRITE, f"{prefix}/index/constraints/+")


def _cancels(rights: LoginRights, prefix: str, place: tuple[str, str], answers: str) -> None:
    """Send cancels and decisions on held tasks of the runs of ``place`` (the org and project
    levels, each encoded or ``+``), and read the answers below ``{prefix}/reply/`` that
    ``answers`` names (``#``, or an org's ``acme/#``: an answer's topic names no project)."""
    runs = f"{prefix}/command/{place[0]}/{place[1]}/+"
    rights.grant(WRITE, f"{runs}/cancel", f"{runs}/decide")
    rights.grant(READ, f"{prefix}/reply/{answers}")


def _starts(rights: LoginRights, prefix: str, place: tuple[str, str]) -> None:
    """Start served workflows on the processes of ``place`` (as :func:`_cancels`): shared
    (``{prefix}/start/{org}/{project}/{workflow}``) or addressed (one level more); the
    answers are read as a cancel's are. And send signals there
    (``{prefix}/signal/{org}/{project}/{topic...}``): what a run's ``cs.recv`` waits for, which
    wakes a run as a start starts one."""
    below = _below(place)
    rights.grant(WRITE, f"{prefix}/start/{below}", f"{prefix}/signal/{below}")


def _below(place: tuple[str, str]) -> str:
    """The topic levels below a kind that ``place`` (as :func:`_cancels`) covers: ``#``,
    ``acme/#`` or ``acme/etl/#``."""
    org, project = place
    return "#" if org == "+" else f"{org}/#" if project == "+" else f"{org}/{project}/#"


def _runs_of(rights: LoginRights, prefix: str, login: str, place: tuple[str, str]) -> None:
    """Publish the telemetry, log lines and summaries of runs of ``place`` (as
    :func:`_cancels`), as ``login``: a run's topic names its org and project, which readers
    hold its payload to, so a login claims runs in its own orgs and projects only."""
    where, level = f"{place[0]}/{place[1]}", encode_level(login)
    rights.grant(
        WRITE,
        f"{prefix}/telemetry/{where}/+/+/{level}",
        f"{prefix}/logs/{where}/+/{level}",
        f"{prefix}/summary/{where}/{level}",
    )


def _serves(
    rights: LoginRights, prefix: str, login: str, exact_retained: bool, place: tuple[str, str]
) -> None:
    """Serve workflows as ``login`` in ``place`` (as :func:`_cancels`): announce them on its
    own topics there, claim its schedules' slots there, probe whether the broker has shared
    subscriptions (its own probe topic), and take start requests addressed to it or given to
    it through the shared subscription
    (``$share/cascade/{prefix}/start/{org}/{project}/{workflow}``, which mosquitto checks as
    ``{prefix}/start/{org}/{project}/{workflow}``). RabbitMQ 3.x takes the probe's
    ``$share/{group}/...`` filter literally and checks it as it is: granted, so
    that the probe costs no connection."""
    level = encode_level(login)
    where = f"{place[0]}/{place[1]}"
    served = f"{prefix}/served/{where}/{level}"
    rights.grant(WRITE, served, f"{served}/ended")
    rights.grant("readwrite", f"{served}/probe")
    rights.grant(READ, f"{prefix}/start/{where}/+", f"{prefix}/start/{where}/+/{level}")
    # the claims of its schedules' slots (docs/schedules.md): read and written by the servers
    # of the place alone, so no other login can take (and so swallow) a slot
    rights.grant("readwrite", f"{prefix}/schedule/{where}/+/+")
    # its triggers: the claims of their events (docs/triggers.md), as a schedule's slots', and
    # the run ends of the place (each written by its own engine's login alone, above)
    rights.grant("readwrite", f"{prefix}/trigger/{where}/+/+")
    rights.grant(READ, f"{prefix}/served/{where}/+/ended")
    if exact_retained:
        rights.grant(READ, f"$share/+/{served}/probe")


def _place(scope: GrantScope, check_name: NameCheck, where: str) -> tuple[str, str]:
    """The org and project levels of an ``org:``, ``project:`` or ``global`` scope (``+``
    where it names none), encoded and checked."""
    if scope.kind == "global":
        return "+", "+"
    levels = [encode_level(scope.org or "")]
    if scope.kind == "project":
        levels.append(encode_level(scope.project or ""))
    for level in levels:
        _checked(level, check_name, f"{where}: {scope}:")
    return levels[0], levels[1] if len(levels) == 2 else "+"


def _engine(
    rights: LoginRights,
    prefix: str,
    exact_retained: bool,
    login: str,
    scopes: tuple[GrantScope, ...],
    check_name: NameCheck,
    where: str,
) -> None:
    shown = ", ".join(str(scope) for scope in scopes)
    rights.roles.add(
        f"engine over {shown}: reads constraints and its scopes' commands, serves workflows "
        "there, writes as itself"
    )
    # every engine reads the others' announcements (the reruns live there), snapshot
    # requests, which carry no org (any reader may ask), and the statuses (a server of a
    # schedule tells a killed server's runs from live ones)
    rights.grant(READ, f"{prefix}/constraints/#", f"{prefix}/served/+/+/+")
    rights.grant(READ, f"{prefix}/command/+/snapshot", f"{prefix}/status/+")
    for scope in scopes:
        place = _place(scope, check_name, where)
        below = _below(place)
        rights.grant(READ, f"{prefix}/command/{below}")
        # what its tasks' cs.recv waits for, and what its tasks send a run of its place
        rights.grant("readwrite", f"{prefix}/signal/{below}")
        _serves(rights, prefix, login, exact_retained, place)
        _runs_of(rights, prefix, login, place)
    if exact_retained:
        rights.grant(
            READ,
            f"{prefix}/index/constraints",
            f"{prefix}/index/constraints/+",
            f"{prefix}/rollcall",
        )


def _recorder(rights: LoginRights, prefix: str, exact_retained: bool) -> None:
    rights.roles.add("recorder: reads everything a recorder reads, asks for snapshots")
    _everything(rights, prefix, exact_retained)
    rights.grant(READ, f"{prefix}/cleared/#", f"{prefix}/reply/#", f"{prefix}/issued/+")


def _notifier(rights: LoginRights, prefix: str, exact_retained: bool) -> None:
    """`cascade notify`: it reads the runs' telemetry and the statuses (an engine lost), calls
    the roll where the broker sends no retained status to a wildcard (RabbitMQ), and writes
    nothing else: no constraint, command, start or snapshot request."""
    rights.roles.add("notifier: reads the runs and the statuses, steers nothing")
    rights.grant(READ, f"{prefix}/telemetry/#", f"{prefix}/status/#")
    rights.grant("readwrite", f"{prefix}/_marker/#")
    if exact_retained:
        rights.grant(WRITE, f"{prefix}/rollcall")


def _dashboard(rights: LoginRights, prefix: str, exact_retained: bool) -> None:
    rights.roles.add("dashboard: reads everything, steers for the people signed in to it")
    _everything(rights, prefix, exact_retained)
    _steers_everything(rights, prefix, exact_retained)


def _run_levels(scope: GrantScope, check_name: NameCheck, where: str) -> str:
    """The telemetry and logs levels below the kind that ``scope`` covers (``acme/etl/#``)."""
    levels = [scope.org or "", scope.project or ""][: 1 if scope.kind == "org" else 2]
    encoded = [encode_level(level) for level in levels]
    for level in encoded:
        _checked(level, check_name, f"{where}: {scope}:")
    return "/".join([*encoded, "#"])


def _person(
    rights: LoginRights,
    login: str,
    grant: Grant,
    prefix: str,
    exact_retained: bool,
    check_name: NameCheck,
    where: str,
) -> None:
    scopes = ", ".join(str(scope) for scope in grant.scopes)
    rights.roles.add(f"{grant.role} over {scopes}")
    for access, topic_filter in _reads(prefix, exact_retained):
        rights.grant(access, topic_filter)
    operator = grant.role >= Role.OPERATOR
    places = [scope for scope in grant.scopes if scope.kind in ("org", "project")]
    for scope in grant.scopes:
        if not scope.names_constraints:  # a place: a run it runs itself (rerun --here)
            _runs_of(rights, prefix, login, _place(scope, check_name, where))
        if scope.kind == "global":
            _everything(rights, prefix, exact_retained)
            if operator:
                _steers_everything(rights, prefix, exact_retained)
        elif scope.kind in ("org", "project"):
            levels = _run_levels(scope, check_name, where)
            rights.grant(READ, f"{prefix}/telemetry/{levels}", f"{prefix}/logs/{levels}")
            # the summaries of its orgs' and projects' runs, at their depth exactly (a '#'
            # would also match {prefix}/summary/{org}, the own summary of a login named as
            # the org, which adds up every org's runs: viewers over global only read those)
            place = _place(scope, check_name, where)
            rights.grant(READ, f"{prefix}/summary/{place[0]}/{place[1]}/+")
            if operator:  # the answers of the org's runs (a project's org: its answers)
                _cancels(rights, prefix, place, f"{place[0]}/#")
                _starts(rights, prefix, place)
        elif operator:  # a task, schedule, workflow or trigger scope: constraints, clear notes
            own = _constraint_topics(scope, places, prefix, check_name, where)
            rights.grant(WRITE, *own)
            rights.grant(WRITE, *(cleared_topic(t, prefix) for t in own))
            if exact_retained:
                rights.grant(WRITE, f"{prefix}/index/constraints/+")


def _constraint_topics(
    scope: GrantScope,
    places: list[GrantScope],
    prefix: str,
    check_name: NameCheck,
    where: str,
) -> list[str]:
    """The constraint topics an operator over a ``task:``, ``schedule:``, ``workflow:`` or
    ``trigger:`` scope writes, in
    the grant's ``places`` (its ``org:`` and ``project:`` scopes: ``org/acme/...`` and
    ``project/acme/+/...`` for ``org:acme``, ``project/acme/etl/...`` for
    ``project:acme/etl``) or, without any, fleet-wide (the unplaced topics, and the same
    target's in every org and project, which are within it).

    Below each place: ``task:*`` is every task scope's topics (``task/#``: every topic below
    ``task/`` reads as a task scope, so an operator of every task steers any glob, a
    narrower one included); any other task glob is a scope of its own (its topic names the
    glob, exactly: a deeper one, ``task/etl_%2A/x``, would be read as another scope, as the
    existing tools write a scope with '/') and its three per-type topics; a schedule is
    paused by its name, so ``schedule:*`` is every schedule's topics (``schedule/+``) and any
    other glob, whose names no topic filter can hold, is refused; a served workflow
    (``workflow:``) and a trigger (``trigger:``) likewise."""
    named = scope.kind in ("schedule", "workflow", "trigger")  # paused by its name's topic
    if named and scope.glob != "*" and any(c in "*?[" for c in scope.glob or ""):
        raise AclError(
            f"{where}: {scope}: a broker binds a {scope.kind}'s pause to its name's topic, not "
            f"to a glob: name the {scope.kind}s ({scope.kind}:nightly) or give {scope.kind}:*"
        )
    if scope.kind == "task" and scope.glob == "*":
        targets = ["task/#"]
    else:
        path = f"{scope.kind}/+" if named and scope.glob == "*" else None
        if path is None:
            path = constraint_topic(str(scope), None, prefix)[len(f"{prefix}/constraints/") :]
            _checked(path, check_name, f"{where}: {scope}: its topic level")
        targets = [path, *(f"{path}/{kind}" for kind in _TYPES)]
    heads = [""]  # fleet-wide: the unplaced topics and the same in every org and project
    if places:
        heads = []
        for place in places:
            org, project = _place(place, check_name, where)
            heads += [f"org/{org}/", f"project/{org}/+/"] if project == "+" else []
            heads += [f"project/{org}/{project}/"] if project != "+" else []
    else:
        heads += ["org/+/", "project/+/+/"]
    return [f"{prefix}/constraints/{head}{target}" for head in heads for target in targets]
