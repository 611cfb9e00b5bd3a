"""Test doubles for code that uses ``MqttConnector``: a pretend broker, no network.

``MqttConnector(link=FakeBroker())`` connects through :class:`FakeLink`
objects, one per connection attempt: no MQTT client, no socket. The test
reads what the connector sent and subscribed, and settles, delivers or
loses the connection when it chooses; :class:`Link` and its types are what a fake of your
own implements. Nothing here imports pytest, aiomqtt
or paho: only what the package itself depends on.

The private brokers and pytest fixtures of Cascade's own integration tests
(mosquitto, RabbitMQ, bridges) are in ``cascade.testkit``, an unpublished
package of the repository.
"""

from .._link import Incoming, Link, LinkError, LinkFactory, LinkHooks, LinkSettings
from ._fake_link import FakeBroker, FakeLink, Sent

__all__ = [
    "FakeBroker",
    "FakeLink",
    "Incoming",
    "Link",
    "LinkError",
    "LinkFactory",
    "LinkHooks",
    "LinkSettings",
    "Sent",
]
