"""The sign-in a team's `cascade dashboard` options ask for, made from them (needs the
dashboard extra: imported once it is known to be there)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from cascade.control.access import Roles, RolesError
from cascade.dashboard import SignIn, is_loopback

from ...plumbing._context import UsageError
from ._sign_in_options import SignInOptions

__all__ = ["TeamSignIn", "team_sign_in"]


@dataclass(frozen=True)
class TeamSignIn:
    """What the options made: the roles, the sign-in, the host names it serves beside the
    listen host, and lines to print on start (never a secret)."""

    roles: Roles | None
    sign_in: SignIn | None
    hosts: tuple[str, ...]
    notes: tuple[str, ...]


def team_sign_in(options: SignInOptions, *, has_token: bool) -> TeamSignIn:
    """The roles and the sign-in of ``options``; UsageError saying what is wrong with them."""
    options.check(has_token=has_token)
    roles = None
    if options.roles is not None:
        try:
            roles = Roles.load(options.roles)
        except RolesError as exc:
            raise UsageError(str(exc)) from None
    if options.oidc_issuer is not None:
        return _oidc(options, roles)
    if options.trusted_proxy:
        from cascade.dashboard import ProxySignIn, trusted_networks

        proxy = ProxySignIn(
            trusted_networks(options.trusted_proxy),
            options.proxy_user_header or "X-Forwarded-User",
            options.proxy_groups_header or "X-Forwarded-Groups",
        )
        shown = ", ".join(map(str, proxy.trusted))
        note = (
            f"sign-in: the {options.proxy_user_header or 'X-Forwarded-User'} header of "
            f"a proxy at {shown}"
        )
        return TeamSignIn(roles, proxy, (), (note,))
    return TeamSignIn(roles, None, (), ())


def _oidc(options: SignInOptions, roles: Roles | None) -> TeamSignIn:
    try:
        from cascade.dashboard import OidcSignIn
    except ImportError as exc:
        raise UsageError(
            f"--oidc-issuer needs the dashboard extra's Authlib ({exc}): "
            "pip install 'cascade-cli[dashboard]'"
        ) from None

    assert options.oidc_issuer is not None
    assert options.public_url is not None
    notes = []
    secret = options.session_secret
    if not secret:
        secret = secrets.token_urlsafe(32)
        notes.append(
            "note: no --session-secret (or CASCADE_SESSION_SECRET): sessions end "
            "when this dashboard restarts"
        )
    try:
        sign_in = OidcSignIn(
            options.oidc_issuer,
            options.oidc_client_id or "",
            options.oidc_client_secret or "",
            options.public_url,
            secret,
            name_claim=options.oidc_name_claim or "email",
            groups_claim=options.oidc_groups_claim or "groups",
            post_logout_url=options.oidc_post_logout_url,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    host = urlsplit(sign_in.public_url).hostname
    if not sign_in.secure and not is_loopback(host or ""):
        notes.append(
            "note: --public-url is http://: session cookies travel unencrypted "
            "beyond this machine (use https)"
        )
    notes.append(
        f"sign-in: OpenID Connect at {sign_in.issuer} (redirect URI {sign_in.redirect_uri})"
    )
    return TeamSignIn(roles, sign_in, (host,) if host else (), tuple(notes))
