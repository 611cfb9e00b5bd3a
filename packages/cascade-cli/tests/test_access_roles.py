"""The roles file and what each identity may do under it (cascade.cli.access)."""

from __future__ import annotations

import pytest

from cascade.control.access import (
    Access,
    Identity,
    Role,
    Roles,
    RolesError,
    glob_within,
    parse_scope,
)

ROLES = """
[[grant]]
role = "viewer"
scopes = ["project:acme/etl"]
people = ["Vera@Example.com"]
broker_users = ["vera"]

[[grant]]
role = "operator"
scopes = ["org:acme", "task:etl_*"]
groups = ["data-eng"]
broker_users = ["alice"]

[[grant]]
role = "admin"
scopes = ["global"]
people = ["root@example.com"]
"""


def access(name: str, *groups: str, via: str = "oidc") -> Access:
    return Access.of(Roles.parse(ROLES), Identity(name, via, frozenset(groups)))  # type: ignore[arg-type]


def test_a_viewer_sees_its_project_only_and_steers_nothing() -> None:
    vera = access("vera@example.com")  # names compare without case
    assert vera.role is Role.VIEWER
    assert vera.sees("acme", "etl")
    assert not vera.sees("acme", "web")
    assert not vera.sees("globex", "etl")
    assert not vera.sees_everything
    assert (
        vera.may_cancel("acme", "etl") == "vera@example.com is not an operator of project acme/etl"
    )
    assert vera.may_steer("task:etl_load") is not None
    assert vera.may_administer() is not None


def test_an_operator_steers_within_its_scopes_only() -> None:
    """An operator over org:acme and task:etl_* steers etl_* (and narrower globs) within acme
    and its projects: not fleet-wide, not in another org, not a wider glob."""
    alice = access("alice@example.com", "data-eng")
    assert alice.role is Role.OPERATOR
    assert alice.may_cancel("acme", "web") is None
    assert alice.may_cancel("globex", "web") is not None
    assert alice.may_steer("org:acme/task:etl_*") is None
    assert alice.may_steer("org:acme/task:etl_load_[ab]") is None
    assert alice.may_steer("project:acme/web/task:etl_*") is None
    assert (
        alice.may_steer("org:acme/task:*")
        == "alice@example.com is not an operator of scope org:acme/task:*"
    )
    assert alice.may_steer("org:globex/task:etl_*") is not None
    assert alice.may_steer("project:globex/acme/task:etl_*") is not None
    assert alice.may_steer("task:etl_*") is not None  # every org's
    assert alice.may_steer("global") is not None


def test_an_operator_of_a_project_steers_there_only() -> None:
    """A grant over a project steers constraints placed in it, not in its org at large."""
    roles = Roles.parse(
        "[[grant]]\nrole='operator'\nscopes=['project:acme/etl', 'task:*']\npeople=['pia']\n"
    )
    pia = Access.of(roles, Identity("pia", "token"))
    assert pia.may_steer("project:acme/etl/task:load") is None
    assert pia.may_steer("org:acme/task:load") is not None
    assert pia.may_steer("project:acme/web/task:load") is not None


def test_an_operator_over_tasks_alone_steers_them_fleet_wide_and_in_each_place() -> None:
    """Without an org or project in its grant, task:etl_* is every org's etl_*."""
    roles = Roles.parse("[[grant]]\nrole='operator'\nscopes=['task:etl_*']\npeople=['fay']\n")
    fay = Access.of(roles, Identity("fay", "token"))
    for scope in ("task:etl_a", "org:acme/task:etl_*", "project:x/y/task:etl_b"):
        assert fay.may_steer(scope) is None
    assert fay.may_steer("org:acme/task:web") is not None


def test_a_schedule_scope_steers_its_schedules_only() -> None:
    """An operator over schedule:etl_* pauses and resumes the schedules it names, never a task
    of the same name; a viewer over it steers nothing; global covers every schedule."""
    roles = Roles.parse(
        "[[grant]]\nrole='operator'\nscopes=['schedule:etl_*']\npeople=['sam']\n"
        "[[grant]]\nrole='viewer'\nscopes=['schedule:*']\npeople=['vic']\n"
    )
    sam, vic = (Access.of(roles, Identity(name, "token")) for name in ("sam", "vic"))
    assert sam.may_steer("schedule:etl_nightly") is None
    assert sam.may_steer("schedule:nightly") == "sam is not an operator of scope schedule:nightly"
    assert sam.may_steer("task:etl_nightly") is not None
    assert sam.may_steer("global") is not None
    assert vic.may_steer("schedule:etl_nightly") is not None
    assert access("root@example.com").may_steer("schedule:nightly") is None


def test_a_trigger_scope_steers_its_triggers_only() -> None:
    """An operator over trigger:nightly_* pauses and resumes the triggers it names (fleet-wide
    or placed), never a schedule, a served workflow or a task of the same name."""
    roles = Roles.parse(
        "[[grant]]\nrole='operator'\nscopes=['trigger:nightly_*']\npeople=['tia']\n"
    )
    assert roles.grants[0].scopes == (parse_scope("trigger:nightly_*"),)
    tia = Access.of(roles, Identity("tia", "token"))
    assert tia.may_steer("trigger:nightly_etl") is None
    assert tia.may_steer("org:acme/trigger:nightly_etl") is None
    assert tia.may_steer("trigger:other") == "tia is not an operator of scope trigger:other"
    for other in ("schedule:nightly_etl", "workflow:nightly_etl", "task:nightly_etl", "global"):
        assert tia.may_steer(other) is not None
    assert access("root@example.com").may_steer("trigger:other") is None


def test_an_admin_over_global_may_do_anything() -> None:
    root = access("root@example.com")
    assert root.sees_everything
    assert root.sees("any", "thing")
    assert root.may_steer("global") is None
    assert root.may_cancel("x", "y") is None
    assert root.may_administer() is None


def test_broker_logins_are_matched_by_login_only() -> None:
    assert access("alice", via="broker").may_steer("org:acme/task:etl_x") is None
    assert access("vera", via="broker").sees("acme", "etl")
    # a person named like a login is not that login
    assert access("alice").role is None
    assert access("nobody@example.com").sees("acme", "etl") is False


@pytest.mark.parametrize(
    ("inner", "outer", "within"),
    [
        ("etl_load*", "etl_*", True),
        ("*", "etl_*", False),
        ("etl_*x", "etl_?x", False),  # ? is one character, * may be many
        ("etl_ax", "etl_?x", True),
        ("etl_[ab]", "etl_*", True),
        ("etl_[ab]", "etl_?", True),
        ("etl_?", "etl_[ab]", False),
        ("etl_a", "etl_[abc]", True),
        ("etl_d", "etl_[!abc]", True),
        ("etl_a", "etl_[!abc]", False),
        ("et?_x", "etl_*", False),
        ("a*b*", "a*", True),
        ("api_call", "api_call", True),
        ("api_*", "api_call", False),
        ("a*", "a[*]", False),  # [*] is a literal star
    ],
)
def test_glob_within(inner: str, outer: str, within: bool) -> None:
    assert glob_within(inner, outer) is within


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[grant]]\nrole='boss'\nscopes=['global']\npeople=['a']", "role 'boss' is not"),
        ("[[grant]]\nrole='viewer'\nscopes=['team:x']\npeople=['a']", "unknown scope 'team:x'"),
        ("[[grant]]\nrole='viewer'\nscopes=['project:acme']\npeople=['a']", "unknown scope"),
        ("[[grant]]\nrole='viewer'\nscopes=[]\npeople=['a']", "no scopes"),
        ("[[grant]]\nrole='viewer'\nscopes=['global']", "names no one"),
        (
            "[[grant]]\nrole='viewer'\nscopes=['global']\npeople=['a']\nuser=['b']",
            "unknown key 'user'",
        ),
        ("[[grant]]\nrole='viewer'\nscopes=['global']\npeople='a'", "people must be a list"),
        ("[grants]\n", "unknown key 'grants'"),
        ("role = ", "is not TOML"),
    ],
)
def test_a_roles_file_that_says_something_unknown_is_refused_naming_the_grant(
    text: str, message: str
) -> None:
    with pytest.raises(RolesError) as caught:
        Roles.parse(text)
    assert message in str(caught.value)
    if "[[grant]]" in text:
        assert "grant 1: " in str(caught.value)


def test_a_missing_roles_file_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RolesError, match="cannot read the roles file"):
        Roles.load(tmp_path / "nope.toml")


def test_scopes_print_as_written() -> None:
    for text in (
        "global",
        "org:acme",
        "project:acme/etl",
        "task:etl_*",
        "schedule:nightly",
        "workflow:report",
        "trigger:nightly_*",
    ):
        assert str(parse_scope(text)) == text


def test_the_broker_table_names_the_other_logins() -> None:
    roles = Roles.parse(
        ROLES + '[broker]\nengines = ["engine-1"]\nrecorders = ["rec"]\ndashboards = ["dash"]\n'
    )
    assert roles.broker.engines == ("engine-1",)
    assert roles.broker.recorders == ("rec",)
    assert roles.broker.dashboards == ("dash",)
    assert roles.broker_users() == ["alice", "vera"]
    with pytest.raises(RolesError, match="unknown key 'engine'"):
        Roles.parse('[broker]\nengine = ["x"]\n')
