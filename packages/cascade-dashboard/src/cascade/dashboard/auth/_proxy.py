"""Signing in through an auth proxy in front (oauth2-proxy, an ingress's auth): the proxy
signs people in and names them in a request header, which is believed from it alone."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import Scope

from cascade.connector_kit import RateLimitedLogger
from cascade.control import ControlError
from cascade.control.access import Identity
from cascade.control.checks import checked_name

from .._errors import SettingsError

__all__ = ["Network", "ProxySignIn", "trusted_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_log = logging.getLogger("cascade.dashboard")
#: The most groups one request's header may name (more is a proxy gone wrong).
MAX_GROUPS = 256


def trusted_networks(values: Iterable[str]) -> list[Network]:
    """The networks of ``--trusted-proxy`` values (an address or a CIDR); SettingsError naming
    the first that is neither."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=True))
        except ValueError as exc:
            raise SettingsError(
                f"--trusted-proxy {value!r} is not an address or a network: {exc}"
            ) from None
    return networks


class ProxySignIn:
    """The identity a trusted proxy's ``user_header`` names (and its ``groups_header``, comma
    separated), believed only from a peer in one of the ``trusted`` networks.

    The header of any other peer is ignored, and logged (rate-limited): a request that
    reaches the dashboard around the proxy cannot sign anyone in by sending it.
    """

    def __init__(
        self,
        trusted: Iterable[Network],
        user_header: str = "X-Forwarded-User",
        groups_header: str = "X-Forwarded-Groups",
    ) -> None:
        self.trusted = tuple(trusted)
        if not self.trusted:
            raise SettingsError("a trusted proxy needs the network it is in: --trusted-proxy CIDR")
        self.user_header = _header_name(user_header, "--proxy-user-header")
        self._shown = user_header.strip()
        self.groups_header = _header_name(groups_header, "--proxy-groups-header")
        self._log = RateLimitedLogger(_log, interval=60.0)

    def routes(self) -> list[BaseRoute]:
        """None: the proxy has the sign-in pages."""
        return []

    def middleware(self) -> list[Middleware]:
        """None: every request carries its headers."""
        return []

    def trusts(self, peer: str | None) -> bool:
        """Whether ``peer`` (a request's client address) is in a trusted network."""
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer.partition("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def identity(self, scope: Scope) -> Identity | None:
        """The user the header names when the request comes from a trusted proxy."""
        users = _headers(scope, self.user_header)
        if not users:
            return None
        client = scope.get("client")
        peer = client[0] if client else None
        if not self.trusts(peer):
            self._log.warning(
                "untrusted", "ignored %s from %s, which is not a --trusted-proxy", self._shown, peer
            )
            return None
        try:
            if len(users) > 1:  # something besides the proxy wrote one: believe neither
                raise SettingsError("the request has two of them")
            name = checked_name(users[0].decode("utf-8"), "the user header")
            groups = _groups(_headers(scope, self.groups_header))
        except (UnicodeDecodeError, SettingsError, ControlError) as exc:
            self._log.warning("unusable", "ignored the proxy's %s: %s", self._shown, exc)
            return None
        return Identity(name, "proxy", groups)


def _header_name(name: str, what: str) -> bytes:
    name = name.strip()
    if not name or not all(c.isascii() and (c.isalnum() or c in "-_") for c in name):
        raise SettingsError(f"{what} {name!r} is not a header name (letters, digits, - and _)")
    return name.lower().encode("ascii")


def _headers(scope: Scope, name: bytes) -> list[bytes]:
    return [v for k, v in scope["headers"] if k == name]


def _groups(raw: list[bytes]) -> frozenset[str]:
    # several headers are one comma-separated list (RFC 9110, 5.3)
    groups = [g.strip() for value in raw for g in value.decode("utf-8").split(",")]
    found = frozenset(checked_name(g, "a group of the groups header") for g in groups if g)
    if len(found) > MAX_GROUPS:
        raise SettingsError(f"the groups header names more than {MAX_GROUPS} groups")
    return found
