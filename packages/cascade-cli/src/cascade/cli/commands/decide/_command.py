"""`cascade retry`, `skip`, `complete` and `fail`: one implementation, four commands (each with
its own help), on one held task (`RUN TASK`) or on every match (`--held`, not `complete`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from cascade.control.checks import checked_reason
from cascade.interfaces.wire import Decision

from ...plumbing._broker import DEFAULT_BROKER, BrokerOptions, broker_options
from ...plumbing._context import UsageError
from ...plumbing._history_db import Db
from ...plumbing._operator import As, Reason, Witness, operator_name, witness_login
from ..held._command import HeldError, HeldTaskGlob
from ..held._held import HeldFilters
from ._decide import Asked, decide_one
from ._decide_held import decide_held

__all__ = ["complete", "fail", "retry", "skip"]

Run = Annotated[
    str | None,
    typer.Argument(
        help="The run's id (32 hex digits) or a prefix only one run has.",
        show_default=False,
    ),
]
Task = Annotated[
    str | None,
    typer.Argument(
        help="The held task: its id, or its name when one held task has it.",
        show_default=False,
    ),
]
Attempt = Annotated[
    int | None,
    typer.Option(
        "--attempt",
        min=1,
        help="The held attempt this decision is about: refused if the task is held at another.",
    ),
]
Held = Annotated[
    bool, typer.Option("--held", help="Decide on every held task the filters pick, not RUN TASK.")
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="With --held: list what would be decided, send nothing.")
]
AllowIncomplete = Annotated[
    bool,
    typer.Option(
        "--allow-incomplete",
        help="With --held: when some run's held tasks did not all come within --timeout, "
        "decide on those found (still exit 1); without it, nothing is decided.",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print each answer as a JSON line.")]
Org = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="The run's org, where the history does not name it: the decision's topic names it "
        "(a broker ACL lets you decide in your orgs only), and the engine answers on a topic of "
        "it. With --held: only that org's runs.",
    ),
]
Project = Annotated[
    str | None,
    typer.Option(
        "--project",
        help="The run's project, where the history does not name it (the decision's topic "
        "names it; without --org and --project the run is first heard on its telemetry). With "
        "--held: only that project's runs.",
    ),
]


def _decide(
    ctx: typer.Context,
    decision: Decision,
    run: str | None,
    task: str | None,
    given: dict[str, Any],
    broker: BrokerOptions,
) -> None:
    asked = Asked(
        decision=decision,
        issued_by=operator_name(given["operator"], broker.username),
        reason=checked_reason(given["reason"]),
        attempt=given["attempt"],
        result=given.get("result"),
        login=witness_login(given["witness"], broker.username),
        org=given["org"],
        project=given.get("project"),
        db=given["db"],
        json_output=given["json_output"],
    )
    filters = HeldFilters(
        given["org"], given.get("project"), given.get("task_glob"), given.get("error")
    )
    if given.get("held"):
        if run is not None or task is not None or given["attempt"] is not None:
            raise UsageError(
                "--held decides on the held tasks it finds: give no RUN, TASK "
                "nor --attempt (filter with --org, --project, --task, --error)"
            )
        allow_incomplete = given.get("allow_incomplete", False)
        decide_held(ctx, asked, filters, given.get("dry_run", False), allow_incomplete, broker)
        return
    if run is None or task is None:
        raise UsageError("give RUN and TASK, or --held")
    if any(given.get(k) for k in ("dry_run", "allow_incomplete", "task_glob", "error")):
        raise UsageError("--dry-run, --allow-incomplete, --task and --error go with --held")
    decide_one(ctx, asked, run, task, broker)


def _held_command(decision: Decision, doc: str) -> Callable[..., None]:
    """The command that takes ``decision`` on one held task (``RUN TASK``) or on every match
    (``--held``), with its help ``doc``: `retry`, `skip` and `fail` differ in nothing else."""

    def command(
        ctx: typer.Context,
        run: Run = None,
        task: Task = None,
        attempt: Attempt = None,
        reason: Reason = None,
        operator: As = None,
        witness: Witness = False,
        json_output: JsonOut = False,
        held: Held = False,
        org: Org = None,
        project: Project = None,
        task_glob: HeldTaskGlob = None,
        error: HeldError = None,
        dry_run: DryRun = False,
        allow_incomplete: AllowIncomplete = False,
        db: Db = None,
        broker: BrokerOptions = DEFAULT_BROKER,
    ) -> None:
        _decide(ctx, decision, run, task, locals(), broker)

    command.__name__ = command.__qualname__ = decision
    command.__doc__ = doc
    return broker_options(command)


retry = _held_command(
    "retry",
    """Retry a held task: one more attempt.

    Retry a held task: one more attempt (failing again holds it again). A gate has no
    attempt to retry: the engine refuses it (not_retryable).

    The run's engine applies the first decision on a hold and refuses later ones, saying who
    decided (exit 1). Exit 0 only once it applied this one; 1 when refused or when no answer
    came within --timeout. RUN is looked up as `cascade cancel` looks it up.
    Examples: cascade retry 58a88765cea2 load --reason "API back";
    cascade retry --held --task 'load_*' --error timeout --dry-run
    """,
)
skip = _held_command(
    "skip",
    """Skip a held task: it and its dependents end skipped.

    Skip a held task: it ends skipped, its dependents skipped as after a failure (a run
    whose only unfinished tasks were skipped so succeeds).

    Exit 0 only once the run's engine applied it; 1 when refused (e.g. decided already: who
    decided is said) or unanswered within --timeout.
    Examples: cascade skip 58a88765cea2 side --reason "not today"; cascade skip --held --task side
    """,
)
fail = _held_command(
    "fail",
    """Fail a held task (or reject a gate): its dependents are skipped.

    Fail a held task, as without a hold: its dependents are skipped, the run fails. A gate
    is rejected: it fails with "rejected by NAME: REASON".

    Exit 0 only once the run's engine applied it; 1 when refused or unanswered within --timeout.
    Examples: cascade fail 58a88765cea2 load --reason "bad input"; cascade fail --held --dry-run
    """,
)


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="'--result'") from None


@broker_options
def complete(
    ctx: typer.Context,
    run: Annotated[str, typer.Argument(help="The run's id or a unique prefix.")],
    task: Annotated[str, typer.Argument(help="The held task's id or name.")],
    result: Annotated[
        str | None,
        typer.Option(
            "--result",
            help="The task's result, as JSON (at most 16 KiB): what its dependents get. Without "
            "it: a gate is approved with true, a failed task completes with null.",
            show_default=False,
        ),
    ] = None,
    attempt: Attempt = None,
    reason: Reason = None,
    operator: As = None,
    witness: Witness = False,
    json_output: JsonOut = False,
    org: Org = None,
    project: Project = None,
    db: Db = None,
    broker: BrokerOptions = DEFAULT_BROKER,
) -> None:
    """Complete a held task with a result (JSON), or approve a gate.

    Complete a held task with a result given as JSON: its dependents run with it. A gate
    (awaiting approval) is approved: its value is the result, true without one.

    Exit 0 only once the run's engine applied it; 1 when refused or unanswered within --timeout.
    Examples: cascade complete 58a88765cea2 load --result '{"rows": 0}' --reason "empty today";
    cascade complete 58a88765cea2 approve-deploy --reason "checked the canary"
    """
    given = {**locals(), "result": None if result is None else _json_value(result)}
    _decide(ctx, "complete", run, task, given, broker)
