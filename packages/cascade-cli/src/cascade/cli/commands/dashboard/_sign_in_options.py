"""`cascade dashboard`'s options for a team: the roles file and how people sign in (OpenID
Connect or a trusted auth proxy), and which combinations of them make sense."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import typer

from ...plumbing._context import UsageError

__all__ = [
    "GroupsHeader",
    "OidcClientId",
    "OidcClientSecret",
    "OidcGroupsClaim",
    "OidcIssuer",
    "OidcNameClaim",
    "OidcPostLogoutUrl",
    "PublicUrl",
    "RolesFile",
    "SessionSecret",
    "SignInOptions",
    "TrustedProxy",
    "UserHeader",
]

RolesFile = Annotated[
    str | None,
    typer.Option(
        "--roles",
        metavar="FILE",
        help="The roles file (TOML): who may see and do what. Turns on team mode: "
        "people sign in (--oidc-issuer, --trusted-proxy, or --token NAME=SECRET).",
    ),
]
OidcIssuer = Annotated[
    str | None,
    typer.Option(
        "--oidc-issuer",
        metavar="URL",
        help="Sign people in with this OpenID Connect provider (its metadata at "
        "URL/.well-known/openid-configuration).",
    ),
]
OidcClientId = Annotated[
    str | None,
    typer.Option("--oidc-client-id", metavar="ID", help="The dashboard's client id there."),
]
OidcClientSecret = Annotated[
    str | None,
    typer.Option(
        "--oidc-client-secret",
        metavar="SECRET",
        envvar="CASCADE_OIDC_CLIENT_SECRET",
        show_default=False,
        help="The client's secret at the provider.",
    ),
]
OidcNameClaim = Annotated[
    str | None,
    typer.Option(
        "--oidc-name-claim",
        metavar="CLAIM",
        help="The ID token claim that names a person (default: email, taken only "
        "where email_verified is true); another claim (e.g. sub) names them as "
        "ISSUER#VALUE, and a token without it signs nobody in.",
    ),
]
OidcGroupsClaim = Annotated[
    str | None,
    typer.Option(
        "--oidc-groups-claim",
        metavar="CLAIM",
        help="The ID token claim listing a person's groups (default: groups).",
    ),
]
OidcPostLogoutUrl = Annotated[
    str | None,
    typer.Option(
        "--oidc-post-logout-url",
        metavar="URL",
        help="Where the provider sends a person who signed out (it must know it).",
    ),
]
PublicUrl = Annotated[
    str | None,
    typer.Option(
        "--public-url",
        metavar="URL",
        help="The dashboard's address as browsers see it; register "
        "URL/auth/callback at the provider as the redirect URI.",
    ),
]
SessionSecret = Annotated[
    str | None,
    typer.Option(
        "--session-secret",
        metavar="SECRET",
        envvar="CASCADE_SESSION_SECRET",
        show_default=False,
        help="Signs the session cookies (16 characters or more); without it, a random "
        "one per start: sessions end when the dashboard restarts.",
    ),
]
TrustedProxy = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-proxy",
        metavar="CIDR",
        help="Believe the auth proxy's user header from these addresses only "
        "(repeatable): the proxy in front signs people in.",
    ),
]
UserHeader = Annotated[
    str | None,
    typer.Option(
        "--proxy-user-header",
        metavar="HEADER",
        help="The proxy's header naming the user (default: X-Forwarded-User).",
    ),
]
GroupsHeader = Annotated[
    str | None,
    typer.Option(
        "--proxy-groups-header",
        metavar="HEADER",
        help="The proxy's header of the user's groups, comma separated "
        "(default: X-Forwarded-Groups).",
    ),
]


@dataclass(frozen=True)
class SignInOptions:
    """The sign-in options as given (``None``: not given)."""

    roles: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_name_claim: str | None = None
    oidc_groups_claim: str | None = None
    oidc_post_logout_url: str | None = None
    public_url: str | None = None
    session_secret: str | None = None
    trusted_proxy: list[str] = field(default_factory=list)
    proxy_user_header: str | None = None
    proxy_groups_header: str | None = None

    def check(self, *, has_token: bool) -> None:
        """UsageError for a contradictory or incomplete combination.

        OpenID Connect and a trusted proxy do not mix: behind an auth proxy, the proxy
        already signed the person in (often with the same provider), and a second way
        would let one request carry two identities.
        """
        oidc = self.oidc_issuer is not None
        proxy = bool(self.trusted_proxy)
        needs_issuer = {
            "--oidc-client-id": self.oidc_client_id,
            "--oidc-name-claim": self.oidc_name_claim,
            "--oidc-groups-claim": self.oidc_groups_claim,
            "--oidc-post-logout-url": self.oidc_post_logout_url,
            "--public-url": self.public_url,
        }
        for option, value in needs_issuer.items():
            if value is not None and not oidc:
                raise UsageError(f"{option} is an OpenID Connect setting: give --oidc-issuer too")
        needs_proxy = {
            "--proxy-user-header": self.proxy_user_header,
            "--proxy-groups-header": self.proxy_groups_header,
        }
        for option, value in needs_proxy.items():
            if value is not None and not proxy:
                raise UsageError(f"{option} needs --trusted-proxy (the proxy that sends it)")
        if oidc and proxy:
            raise UsageError(
                "give --oidc-issuer or --trusted-proxy, not both: an auth proxy "
                "in front signs people in itself"
            )
        if oidc and not self.oidc_client_id:
            raise UsageError(
                "--oidc-issuer needs --oidc-client-id (the dashboard's client "
                "registered at the provider)"
            )
        if oidc and not self.oidc_client_secret:
            raise UsageError(
                "--oidc-issuer needs --oidc-client-secret (or CASCADE_OIDC_CLIENT_SECRET)"
            )
        if oidc and not self.public_url:
            raise UsageError(
                "--oidc-issuer needs --public-url: the dashboard's address as "
                "browsers see it, for the redirect URI URL/auth/callback"
            )
        if (oidc or proxy) and self.roles is None:
            way = "--oidc-issuer" if oidc else "--trusted-proxy"
            raise UsageError(
                f"{way} needs --roles FILE: the roles file says what each person may see and do"
            )
        if self.roles is not None and not (oidc or proxy or has_token):
            raise UsageError(
                "--roles needs a way to sign in: --oidc-issuer, --trusted-proxy "
                "or --token NAME=SECRET"
            )
