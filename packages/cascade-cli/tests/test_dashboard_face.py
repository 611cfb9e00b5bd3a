"""What `cascade dashboard` gives the dashboard package: the `cascade record` its page shows."""

from __future__ import annotations

from cascade.cli.commands.dashboard._dashboard_face import record_command
from cascade.cli.plumbing import BrokerOptions


def test_the_record_command_names_the_broker_its_user_and_tls_never_the_password() -> None:
    """An IPv6 address in brackets, quoted; --username and --tls kept; the password left out."""
    broker = BrokerOptions(host="::1", port=1884, username="ops", password="secret", tls=True)
    assert record_command(broker) == "cascade record --host '[::1]:1884' --username ops --tls"


def test_the_record_command_of_a_default_broker_is_on_localhost() -> None:
    assert record_command(BrokerOptions()) == "cascade record --host localhost:1883"


def test_the_record_command_names_every_node() -> None:
    """A broker of several nodes (--host a,b:1884): all of them, in order."""
    broker = BrokerOptions(host="a", other_hosts=("b:1884",))
    assert record_command(broker) == "cascade record --host a:1883,b:1884"
