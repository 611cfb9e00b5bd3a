"""``cs.format`` and ``cs.template`` on a format string or template that may come from a
param: no field reaches into a value's attributes or items (``{0.__globals__}``), and
what they render, and each width or repetition they ask for, is bounded
(:data:`~._bounds.MAX_RENDERED_CHARS`, ``max_length=``)."""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._errors import CascadeRuntimeError
from ._bounds import BoundExceeded, check_bound

__all__ = ["FormatFieldRefused", "render_format", "render_template"]

_NUMBERS = re.compile(r"\d+")
_PLAIN_FIELD = re.compile(r"\d+|[^\W\d]\w*")


class FormatFieldRefused(CascadeRuntimeError, ValueError):
    """A field of ``cs.format``'s format string that reaches into a value (``{0.name}``,
    ``{0[key]}``): only plain fields (``{}``, ``{0}``, ``{name}``) with a conversion and a
    format spec are taken."""


def _check_numbers(text: str, limit: int | None, provider: str) -> None:
    """Every number in a format spec (a width, a precision) within ``limit``: ``{0:>40000000}``
    would make 40 million characters from one."""
    if limit is None:
        return
    for number in _NUMBERS.findall(text):
        if len(number) > len(str(limit)) or int(number) > limit:
            raise BoundExceeded(
                provider, f"the width or precision {number[:20]}", limit, "max_length"
            )


class _Counted:
    """Characters rendered so far, against the bound."""

    def __init__(self, limit: int | None, provider: str) -> None:
        self.limit = limit
        self.provider = provider
        self.count = 0

    def add(self, length: int) -> None:
        self.count += length
        check_bound(self.count, self.limit, self.provider, "what it renders", "max_length")


class _PlainFormatter(string.Formatter):
    """``str.format`` with plain fields only, and bounded."""

    def __init__(self, limit: int | None) -> None:
        self.rendered = _Counted(limit, "format")

    def parse(self, format_string: str) -> Any:
        for literal, field, spec, conversion in super().parse(format_string):
            self.rendered.add(len(literal))
            yield literal, field, spec, conversion

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if not _PLAIN_FIELD.fullmatch(field_name):
            raise FormatFieldRefused(
                f"cs.format: the field {{{field_name[:60]}}} reaches into a value; only plain "
                "fields ({}, {0}, {name}) are taken, with a conversion and a format spec"
            )
        return super().get_field(field_name, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        _check_numbers(format_spec, self.rendered.limit, "format")
        formatted = super().format_field(value, format_spec)
        self.rendered.add(len(formatted))
        return formatted


def render_format(
    template: str, args: Sequence[Any], kwargs: Mapping[str, Any], limit: int | None
) -> str:
    """``template.format(*args, **kwargs)`` with plain fields only, within ``limit``
    characters (``None``: any)."""
    if not isinstance(template, str):
        raise TypeError(f"cs.format's format string is a str, not {type(template).__name__}")
    return _PlainFormatter(limit).vformat(template, args, kwargs)


# str methods whose result grows with an argument: (name) -> its size from the call
_GROWING: dict[str, Callable[..., int]] = {
    "center": lambda s, width=0, *_: int(width),
    "ljust": lambda s, width=0, *_: int(width),
    "rjust": lambda s, width=0, *_: int(width),
    "zfill": lambda s, width=0, *_: int(width),
    "expandtabs": lambda s, tabsize=8, *_: len(s) * max(int(tabsize), 1),
    "replace": lambda s, old="", new="", *_: len(s) + (s.count(old) + 1) * len(new),
    "join": lambda s, items=(), *_: 0,
}


def _size_of_repeat(left: Any, right: Any) -> int:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
            return len(seq) * times
    return 0


def _power_bits(base: Any, exponent: Any) -> int:
    """About how many bits ``base ** exponent`` has, for two ints (else 0)."""
    if not isinstance(base, int) or not isinstance(exponent, int) or exponent <= 0:
        return 0
    return exponent * max(abs(base).bit_length() - 1, 0)


def _bounded_environment(limit: int | None) -> Any:
    from jinja2.sandbox import SandboxedEnvironment

    def refuse(what: str) -> BoundExceeded:
        return BoundExceeded("template", what, limit or 0, "max_length")

    class BoundedSandbox(SandboxedEnvironment):
        # intercepted, so never folded to a constant when the template compiles
        intercepted_binops = frozenset({"*", "**", "%"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if limit is not None:
                if operator == "*" and _size_of_repeat(left, right) > limit:
                    raise refuse("a repetition (*)")
                if operator == "**" and _power_bits(left, right) > limit * 4:
                    raise refuse("a power (**)")
                if operator == "%" and isinstance(left, str):
                    _check_numbers(left, limit, "template")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            name = getattr(__obj, "__name__", "")
            owner = getattr(__obj, "__self__", None)
            if limit is not None and isinstance(owner, str) and name in _GROWING:
                try:
                    size = _GROWING[name](owner, *args, **kwargs)
                except (TypeError, ValueError):
                    size = 0  # the method itself says what is wrong with its arguments
                if size > limit:
                    raise refuse(f"str.{name}'s result")
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value: Any) -> Any:
            wrapped = super().wrap_str_format(value)
            if wrapped is None or limit is None:
                return wrapped
            owner: str = value.__self__

            def bounded(*args: Any, **kwargs: Any) -> str:
                _check_numbers(owner, limit, "template")
                formatted: str = wrapped(*args, **kwargs)
                check_bound(len(formatted), limit, "template", "what it renders", "max_length")
                return formatted

            return bounded

    environment = BoundedSandbox()
    filters = environment.filters

    def checked(name: str, size: Callable[..., int]) -> None:
        original = filters[name]

        @functools.wraps(original)  # keeps what Jinja2 passes it (the eval context)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            if limit is not None and size(*args, **kwargs) > limit:
                raise refuse(f"the filter {name}'s result")
            return original(*args, **kwargs)

        filters[name] = bounded

    checked("center", lambda s, width=80, *_: int(width))
    checked(
        "indent",
        lambda s, width=4, *a, **k: (
            len(str(s)) * (int(width) if isinstance(width, int) else len(str(width)))
        ),
    )
    checked(
        "replace",
        lambda ctx, s, old, new, *a: len(str(s)) + (str(s).count(old) + 1) * len(str(new)),
    )
    checked("format", lambda s, *a, **k: max((int(n) for n in _NUMBERS.findall(str(s))), default=0))
    return environment


def render_template(template_string: str, values: Mapping[str, Any], limit: int | None) -> str:
    """The Jinja2 template rendered with ``values`` in Jinja2's sandbox, within ``limit``
    characters (``None``: any), each repetition and width it asks for within it too."""
    template = _bounded_environment(limit).from_string(template_string)
    rendered = _Counted(limit, "template")
    parts: list[str] = []
    for part in template.generate(**values):
        rendered.add(len(part))
        parts.append(part)
    return "".join(parts)
