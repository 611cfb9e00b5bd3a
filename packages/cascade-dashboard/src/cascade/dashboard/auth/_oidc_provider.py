"""The OpenID provider as the dashboard talks to it: one TLS context and the provider's
metadata and keys, kept for the app's life, so that a sign-in page costs no connection.

Authlib's Starlette client makes a new HTTP client (and its TLS context) for every
authorization URL it writes, and asks for the metadata again after each failure: a flood of
``GET /auth/login`` would cost the dashboard's event loop a TLS context each, and the
provider a request each while it is down. Here the authorization URL is written from the
metadata kept (no client at all), the metadata is fetched once (one fetch however many ask at
once; after a failure, none for :data:`RETRY_SECONDS`), and the keys are fetched again for an
ID token signed by a key not known yet, at most every :data:`KEYS_FLOOR_SECONDS`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
from authlib.common.security import generate_token
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from starlette.requests import Request

from cascade.interfaces import CascadeError

__all__ = ["KEYS_FLOOR_SECONDS", "RETRY_SECONDS", "ProviderUnavailable", "provider_client"]

#: After the metadata could not be fetched, seconds before it is asked for again.
RETRY_SECONDS = 5.0
#: The fewest seconds between two fetches of the provider's keys.
KEYS_FLOOR_SECONDS = 60.0


class ProviderUnavailable(CascadeError):
    """The provider's metadata could not be had (now, or a moment ago)."""


class _Provider(StarletteOAuth2App):  # type: ignore[misc]
    """Authlib's client with its metadata and keys fetched once, under a lock and a floor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = asyncio.Lock()
        self._failed_at = -RETRY_SECONDS
        self._failure = ""
        self._keys_at = -KEYS_FLOOR_SECONDS

    async def load_server_metadata(self) -> dict[str, Any]:
        if "_loaded_at" in self.server_metadata:
            return self.server_metadata  # type: ignore[no-any-return]
        async with self._lock:
            if "_loaded_at" in self.server_metadata:
                return self.server_metadata  # type: ignore[no-any-return]
            if time.monotonic() - self._failed_at < RETRY_SECONDS:
                raise ProviderUnavailable(self._failure)
            try:
                return await super().load_server_metadata()  # type: ignore[no-any-return]
            except (httpx2.HTTPError, ValueError) as exc:
                self._failed_at = time.monotonic()
                self._failure = (str(exc) or type(exc).__name__)[:300]
                raise ProviderUnavailable(self._failure) from exc

    async def fetch_jwk_set(self, force: bool = False) -> Any:
        if force and time.monotonic() - self._keys_at < KEYS_FLOOR_SECONDS:
            force = False  # keys fetched a moment ago: an unknown kid stays unknown
        if force or "jwks" not in self.server_metadata:
            self._keys_at = time.monotonic()
        return await super().fetch_jwk_set(force=force)

    async def authorization(self, request: Request, redirect_uri: str) -> str:
        """The provider's authorization URL for a sign-in (a state, a nonce and an S256 code
        challenge), kept in the session as Authlib keeps them for the callback; no request is
        made once the metadata is known."""
        metadata = await self.load_server_metadata()
        endpoint = metadata.get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise ProviderUnavailable("its metadata has no authorization_endpoint")
        state, nonce, verifier = generate_token(30), generate_token(20), generate_token(48)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.client_kwargs["scope"],
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        url = str(httpx2.URL(endpoint).copy_merge_params(params))
        data = {"redirect_uri": redirect_uri, "code_verifier": verifier, "nonce": nonce, "url": url}
        await self.framework.set_state_data(request.session, state, data)
        return url


class _OAuth(OAuth):  # type: ignore[misc]
    oauth2_client_cls = _Provider


def provider_client(issuer: str, client_id: str, client_secret: str, scope: str) -> Any:
    """The client of the provider at ``issuer``: one TLS context for every request it makes
    (the code's exchange, the metadata, the keys)."""
    tls = httpx2.create_ssl_context()
    return _OAuth().register(
        "cascade",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": scope,
            "code_challenge_method": "S256",
            "timeout": 10.0,
            "verify": tls,
        },
    )
