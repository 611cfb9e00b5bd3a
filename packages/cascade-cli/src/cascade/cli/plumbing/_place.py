"""``--org`` and ``--project`` of the readers (`status`, `watch`, `held`, `why`, `logs`, and
the run lookups of the decisions): the org and project they read within.

A broker ACL (``cascade acl``) binds a login's reads to the orgs and projects of its grants;
RabbitMQ closes the connection of a subscription it denies, so a login over less than
``global`` must subscribe within them: ``--org acme`` reads acme's runs, ``--project
acme/etl`` (or ``--org acme --project etl``) that project's. Without either, a reader reads
every org's (``$CASCADE_ORG`` and ``$CASCADE_PROJECT`` are the defaults).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ._view_options import check_id

if TYPE_CHECKING:
    from cascade.reader import Place

__all__ = ["PlaceOrg", "PlaceProject", "read_place"]

PlaceOrg = Annotated[
    str | None,
    typer.Option(
        "--org",
        envvar="CASCADE_ORG",
        help="Read only this org's runs and summaries (default: $CASCADE_ORG). A login over "
        "less than global must give its org or project: the broker refuses the others.",
    ),
]
PlaceProject = Annotated[
    str | None,
    typer.Option(
        "--project",
        envvar="CASCADE_PROJECT",
        metavar="[ORG/]PROJECT",
        help="Read only this project's runs: ORG/PROJECT, or PROJECT with --org (alone: that "
        "project in every org). Default: $CASCADE_PROJECT.",
    ),
]


def read_place(org: str | None, project: str | None) -> Place:
    """The :class:`~cascade.reader.Place` ``--org`` and ``--project`` name: ``--project
    ORG/PROJECT`` without ``--org`` names both (split at its first ``/``), with ``--org`` the
    project as it is. A usage error (exit 2) for an id that cannot stand in a topic."""
    from cascade.reader import Place  # a command's work, not its --help

    if org is None and project is not None and "/" in project:
        org, project = project.split("/", 1)
        if not org or not project:
            raise typer.BadParameter(
                "give ORG/PROJECT (acme/etl), or PROJECT with --org", param_hint="'--project'"
            )
    if org is not None:
        check_id(org, "--org")
    if project is not None:
        check_id(project, "--project")
    return Place(org, project)
