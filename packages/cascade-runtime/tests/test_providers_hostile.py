"""The providers against a hostile param or source (issue 89, items 2-4): a format string
that reaches for secrets, a few bytes that render or parse into gigabytes, a param that names
a file to send or code to run; each attack fails its task with an error naming the bound or
the rule, and ordinary use is unchanged."""

from __future__ import annotations

import pytest

import cascade.runtime as cs
from cascade.runtime import TaskFailedError
from cascade.runtime.workflow._bounds import BoundExceeded
from cascade.runtime.workflow._formatting import FormatFieldRefused


def _failure(target: object, **params: object) -> BaseException:
    """The cause of the task failure running ``target`` with ``params`` ends in."""
    with pytest.raises(TaskFailedError) as failed:
        cs.run(target, params=params)
    cause = failed.value.__cause__
    assert cause is not None
    return cause


# --- item 2: format strings and templates from params ---


def test_a_format_string_from_a_param_cannot_reach_a_secret(monkeypatch) -> None:
    monkeypatch.setenv("HOSTILE_SECRET", "s3cret")
    fmt = "{0.raise_for_status.__globals__[os].environ[HOSTILE_SECRET]}"
    target = cs.format(cs.Param("fmt"), cs.HttpResponse(200))
    error = _failure(target, fmt=fmt)
    assert isinstance(error, FormatFieldRefused)
    assert "s3cret" not in str(error)
    assert isinstance(_failure(cs.format(cs.Param("fmt"), {"k": 1}), fmt="{0[k]}"), ValueError)


def test_format_keeps_its_ordinary_meaning() -> None:
    rendered = cs.run(cs.format("{0} and {name!r:>6}, {0:.2f}", 1.5, name="x"))
    assert rendered == "1.5 and    'x', 1.50"
    assert cs.run(cs.format("{{literal}} {}", "v")) == "{literal} v"


@pytest.mark.parametrize(
    "fmt, values",
    [("{0:>40000000}", (1,)), ("{0:.40000000f}", (1.0,)), ("{0:{1}}", (1, ">40000000"))],
)
def test_a_format_spec_past_the_bound_is_refused(fmt: str, values: tuple) -> None:
    error = _failure(cs.format(cs.Param("fmt"), *values), fmt=fmt)
    assert isinstance(error, BoundExceeded)
    assert "max_length" in str(error) and "1,000,000" in str(error)


def test_what_format_renders_is_bounded_and_the_bound_is_an_option() -> None:
    big = "x" * 600_000
    assert isinstance(_failure(cs.format("{}{}", big, big)), BoundExceeded)
    assert len(cs.run(cs.format("{}{}", big, big, max_length=2_000_000))) == 1_200_000
    assert isinstance(_failure(cs.format("{0:>20}", 1, max_length=10)), BoundExceeded)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'A' * 40000000 }}",
        "{{ 40000000 * 'A' }}",
        "{{ 'a'.center(40000000) }}",
        "{{ 'a'|center(40000000) }}",
        "{{ '%40000000s' % 1 }}",
        "{{ '%40000000s'|format(1) }}",
        "{{ '{:>40000000}'.format(1) }}",
        "{{ ('A' * 1000)|replace('A', 'A' * 1000) }}",
        "{{ 10 ** 100000000 }}",
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    ],
)
def test_a_template_from_a_param_cannot_render_past_the_bound(template: str) -> None:
    error = _failure(cs.template(cs.Param("t")), t=template)
    assert isinstance(error, BoundExceeded), error
    assert "max_length" in str(error)


def test_a_template_within_the_bound_renders_and_the_bound_is_an_option() -> None:
    rendered = cs.run(cs.template("{{ 'ab' * 3 }} {{ x|center(5) }}!", x="y"))
    assert rendered == "ababab   y  !"
    assert len(cs.run(cs.template("{{ 'A' * 2000000 }}", max_length=3_000_000))) == 2_000_000
    assert isinstance(_failure(cs.template("{{ x }}", x="y" * 20, max_length=10)), BoundExceeded)
