"""Who a request or a message comes from, as far as something vouches for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Identity", "Via"]

Via = Literal["token", "oidc", "proxy", "api-token", "broker"]


@dataclass(frozen=True)
class Identity:
    """A person (or a script) as a sign-in names them.

    ``name``: the OIDC claim configured (a verified ``email`` by default; another claim is
    qualified with the issuer: ``https://id.example#248289``), the trusted proxy's header,
    an API token's holder, a ``--token``'s name, or a broker login (``via="broker"``).
    ``groups``: the OIDC groups claim or the proxy's groups header. ``via`` says what
    vouches for the name; the audit shows it beside the name.
    """

    name: str
    via: Via
    groups: frozenset[str] = field(default=frozenset())
    claim: str | None = field(default=None, compare=False)
    """Of ``oidc``: the ID token's claim that named them (``email``, ``sub``, ...)."""

    def __str__(self) -> str:
        return f"{self.name} ({self.via})"
