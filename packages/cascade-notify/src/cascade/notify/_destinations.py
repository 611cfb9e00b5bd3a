"""``Destinations``: where a webhook may post. Whoever configures a webhook (an admin of the
dashboard, whoever writes a notifier's config) must not make it a scanner of the network it
runs in, so by default a webhook posts only to global addresses: a destination that is, or
resolves to, a loopback, private, link-local, multicast, unspecified, reserved or cloud
metadata address is refused, unless an allow-list names it (a host name, an address or a
network). The check is made on the very address connected to: a name is resolved once, every
address it resolves to checked, and the connection made to a checked address (its TLS still
verified against the name), so a DNS answer that changes between a check and a connection
cannot slip through.

Proxies named by the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``,
read as httpx reads them) are used, as by any httpx client: a proxy is the operator's own
configuration, so it is connected to wherever it is; the destination is checked before the
proxy is asked anything (its name, or address, and the addresses the name resolves to here,
when it does), and the proxy then resolves the name itself. A destination ``NO_PROXY`` names
is connected to directly, guarded as any."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2

from cascade.interfaces import CascadeError

__all__ = ["DestinationRefused", "Destinations", "Resolve"]

Resolve = Callable[[str, int], Sequence[str]]
"""Resolves a host name and port to its addresses (``socket.getaddrinfo``'s, by default)."""

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text)
    for text in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HINT = (
    "posting inside takes an allowed destination (cascade notify --allow-destination; "
    "cascade dashboard --notify-allow-destination)"
)


class DestinationRefused(CascadeError, ValueError):
    """A webhook's destination is inside (loopback, private, link-local, ...) and not allowed;
    the message says which address and why, never the URL's path."""


def _system_resolve(host: str, port: int) -> list[str]:
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _kind(address: _Address) -> str | None:
    """What makes ``address`` inside (``None``: a global address)."""
    if address in _METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        teredo = address.teredo
        embedded = (
            address.ipv4_mapped,
            address.sixtofour,
            teredo[1] if teredo else None,
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None,
        )
        for inner in embedded:
            if inner is not None and _kind(inner) is not None:
                return _kind(inner)
    for kind, inside in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved or not address.is_global),
    ):
        if inside:
            return kind
    return None


class Destinations:
    """Where webhooks may post: global addresses, and what ``allow`` names (host names,
    matched whole and case-insensitively, addresses and networks: ``hooks.internal``,
    ``127.0.0.1``, ``10.0.0.0/8``, ``::1``). ``resolve``: how names become addresses (tests
    give a stub); ``network``: the ``httpcore2`` network backend connections are made with
    (tests give one that connects only to loopback)."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        *,
        resolve: Resolve | None = None,
        network: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self.hosts: set[str] = set()
        self.networks: list[_Network] = []
        for entry in allow:
            text = entry.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
            if not text:
                raise ValueError("an allowed destination is a host name, address or network")
            try:
                self.networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                if "/" in text or any(c.isspace() for c in text):
                    raise ValueError(f"{entry!r} is neither a host name nor a network") from None
                self.hosts.add(text)
        self.resolve = resolve or _system_resolve
        self.network = network

    def _allowed(self, address: _Address) -> bool:
        return any(address in network for network in self.networks)

    def refusal(self, host: str, address: str | None = None) -> str | None:
        """Why ``host`` (at ``address``, when given) may not be posted to, or ``None``. A host
        that is an address is checked as one; a name only by what it says (``localhost``, a
        metadata service's name), its addresses by :meth:`addresses`."""
        name = host.lower().rstrip(".").removeprefix("[").removesuffix("]")
        if name in self.hosts:
            return None
        shown = f"[{name}]" if ":" in name else name
        if address is None:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                if name == "localhost" or name.endswith(".localhost"):
                    return f"{shown} is refused: a loopback name; {_HINT}"
                if name in _METADATA_NAMES:
                    return f"{shown} is refused: a cloud metadata service; {_HINT}"
                return None
            address = name
        ip = ipaddress.ip_address(address.partition("%")[0])
        kind = None if self._allowed(ip) else _kind(ip)
        if kind is None:
            return None
        said = shown if address == name else f"{shown} (at {address})"
        return f"{said} is refused: a {kind} address; {_HINT}"

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``: itself when allowed by name, else every
        address it resolves to, each checked; ``DestinationRefused`` when one is refused
        (``OSError`` when it does not resolve)."""
        name = host.lower().rstrip(".")
        if name in self.hosts:
            return [host]
        refused = self.refusal(host)
        if refused is not None:
            raise DestinationRefused(refused)
        found = list(self.resolve(host, port))
        if not found:
            raise OSError(f"{host} resolves to no address")
        for address in found:
            refused = self.refusal(host, address)
            if refused is not None:
                raise DestinationRefused(refused)
        return found

    def check(self, url: str) -> None:
        """Refuse ``url`` (``DestinationRefused``) when its host is, or now resolves to, an
        address not allowed; a name that does not resolve now is left to each post. Blocking:
        it may ask the DNS."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with contextlib.suppress(OSError):
            self.addresses(host, port)

    def transport(self) -> httpx2.AsyncBaseTransport:
        """An ``httpx2`` transport whose every connection goes to a checked address."""
        return _GuardedTransport(self)

    def mounts(self) -> dict[str, httpx2.AsyncBaseTransport | None]:
        """The proxies the environment names, as an ``httpx2`` client's ``mounts`` (with
        :meth:`transport` its ``transport``): a URL pattern for each proxy (a transport that
        checks each request's destination before it asks the proxy), and ``None`` for each
        ``NO_PROXY`` entry (the direct, guarded transport). Read now, as httpx reads them
        when a client is made."""
        return {
            pattern: None if url is None else _ProxiedTransport(self, httpx2.Proxy(url))
            for pattern, url in _environment_proxies().items()
        }


class _GuardedNetwork(httpcore2.AsyncNetworkBackend):
    """Connects to what :meth:`Destinations.addresses` gives, the first that answers."""

    def __init__(self, destinations: Destinations, inner: httpcore2.AsyncNetworkBackend) -> None:
        self.destinations = destinations
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await asyncio.to_thread(self.destinations.addresses, host, port)
        except DestinationRefused:
            raise
        except OSError as exc:
            raise httpcore2.ConnectError(f"{host} does not resolve: {exc}") from None
        options = list(socket_options or ())
        failed: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(address, port, timeout, local_address, options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failed = exc
        assert failed is not None
        raise failed

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise DestinationRefused("a webhook posts over TCP, never to a local socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _ProxiedTransport(httpx2.AsyncBaseTransport):
    """httpx2's transport through ``proxy``, each request's destination checked first (a name
    that resolves here to a refused address never reaches the proxy; one that does not
    resolve here is left to the proxy). The proxy itself is connected to unchecked."""

    def __init__(self, destinations: Destinations, proxy: httpx2.Proxy) -> None:
        self.destinations = destinations
        self.inner = httpx2.AsyncHTTPTransport(proxy=proxy)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            await asyncio.to_thread(self.destinations.addresses, url.host, port)
        except DestinationRefused:
            raise
        except OSError:
            pass  # not resolvable here: the proxy resolves it
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


# httpx2's private parts reached, all here, each failing loudly if httpx2 changes it: the
# environment's proxies as its clients read them (the function its AsyncClient calls), and its
# transport's connection pool (made again with a guarded network backend).


def _environment_proxies() -> dict[str, str | None]:
    try:
        from httpx2._utils import get_environment_proxies
    except ImportError:  # pragma: no cover - only when httpx2 changes
        raise RuntimeError("httpx2 changed: it reads the environment's proxies no more") from None
    return get_environment_proxies()


class _GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport, its pool's connections made by :class:`_GuardedNetwork` (for the
    direct connections: proxies are :meth:`Destinations.mounts`)."""

    def __init__(self, destinations: Destinations) -> None:
        super().__init__()
        network = _GuardedNetwork(destinations, destinations.network or httpcore2.AnyIOBackend())
        # httpx2's transport takes no network backend: its pool is made again with ours (the
        # same settings as httpx2's default pool)
        if not isinstance(getattr(self, "_pool", None), httpcore2.AsyncConnectionPool):
            raise RuntimeError("httpx2's transport changed: it keeps no connection pool")
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=network,
        )
