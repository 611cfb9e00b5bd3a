"""Who a request or a message comes from, as far as something vouches for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Identity", "Via"]

Via = Literal["token", "oidc", "proxy", "api-token", "broker"]


@dataclass(frozen=True)
class Identity:
    """A person (or a script) as a sign-in names them.

    ``name``: the OIDC claim configured (``email`` by default), the trusted proxy's header,
    an API token's holder, a ``--token``'s name, or a broker login (``via="broker"``).
    ``groups``: the OIDC groups claim or the proxy's groups header. ``via`` says what
    vouches for the name; the audit shows it beside the name.
    """

    name: str
    via: Via
    groups: frozenset[str] = field(default=frozenset())

    def __str__(self) -> str:
        return f"{self.name} ({self.via})"
