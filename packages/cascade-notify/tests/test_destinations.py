"""``Destinations``: inside addresses and names refused unless allowed, before any socket."""

from __future__ import annotations

import pytest

from cascade.notify import DestinationRefused, Destinations, Webhook


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/x",
        "http://localhost/x",
        "http://api.localhost/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://0.0.0.0/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://100.64.0.1/x",
        "http://224.0.0.1/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[fd00:ec2::254]/x",
        "http://[64:ff9b::a00:1]/x",
    ],
)
def test_an_inside_destination_is_refused_when_configured(url: str) -> None:
    with pytest.raises(DestinationRefused, match=r"is refused: .*--allow-destination"):
        Webhook(url)


def test_a_name_resolving_inside_is_refused_when_checked() -> None:
    """The address a name resolves to decides: a decimal IPv4 (``2130706433``) is loopback."""
    with pytest.raises(DestinationRefused, match=r"2130706433 \(at 127.0.0.1\) .* loopback"):
        Destinations().check("http://2130706433/x")
    stub = Destinations(resolve=lambda host, port: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(DestinationRefused, match=r"at 10\.0\.0\.1"):
        stub.check("https://hooks.example.net/x")


def test_global_destinations_pass() -> None:
    Destinations(resolve=lambda host, port: ["93.184.216.34"]).check("https://hooks.example/x")
    Webhook("https://[2606:4700::1111]/x")
    Webhook("https://1.1.1.1/x")


def test_an_allow_list_opens_named_hosts_and_networks() -> None:
    allowed = Destinations(allow=["127.0.0.1", "10.0.0.0/8", "LocalHost", "[::1]"])
    for url in ("http://127.0.0.1:9/x", "http://10.9.8.7/x", "http://localhost/x", "http://[::1]/"):
        Webhook(url, destinations=allowed)
        allowed.check(url)
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.2"):
        Webhook("http://127.0.0.2/x", destinations=allowed)


def test_a_bad_allow_list_entry_is_an_error() -> None:
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        Destinations(allow=["10.0.0.0/33"])
