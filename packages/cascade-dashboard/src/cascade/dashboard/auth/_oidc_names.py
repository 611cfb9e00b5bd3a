"""Who an ID token names, by what the provider vouches for: its ``email`` only where it says
the address is verified (``email_verified`` true), or the one claim the dashboard was told
to name people by (``--oidc-name-claim``), qualified with the issuer. Never a fallback to
another claim: an account that lacks the claim signs nobody in, whatever else it says.

Why: a provider lets its users choose a ``preferred_username``, and many let them type an
email they do not own (left unverified). Either, taken as a name, signs that user in as
whoever the roles file names so: the admin.
"""

from __future__ import annotations

from typing import Any

from cascade.interfaces import CascadeError

__all__ = ["NotNamed", "name_of"]

_MAX_CLAIM = 256


class NotNamed(CascadeError, ValueError):
    """The ID token names nobody the dashboard may believe; says why."""


def name_of(claims: dict[str, Any], claim: str, issuer: str) -> str:
    """The person ``claims`` names by ``claim``: a verified ``email`` as it is (its
    ``email_verified`` is ``true``, or the string ``"true"`` some providers send), any other
    claim as ``<issuer>#<value>`` (two providers' subjects never collide); NotNamed why not."""
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise NotNamed(
            f"the provider's ID token has no {claim}: this dashboard names people by {claim} only"
        )
    name = value.strip()
    if len(name) > _MAX_CLAIM or not name.isprintable():
        raise NotNamed(f"the ID token's {claim} is not a usable name")
    if claim == "email":
        verified = claims.get("email_verified")
        if verified is not True and verified != "true":  # some providers send a string
            raise NotNamed(
                "the provider does not vouch for this email address (its "
                "email_verified is not true): verify it at the provider, or ask "
                "an admin to name people by another claim"
            )
        return name
    return f"{issuer}#{name}"
