"""Test doubles with real semantics, to test against instead of mocks.

``InMemoryBroker`` behaves like an MQTT broker in one process (retained
messages, wildcard routing, wills); ``InMemoryConnector`` implements
:class:`cascade.interfaces.Connector` on top of it.
"""

from ._memory import InMemoryBroker, InMemoryConnector

__all__ = ["InMemoryBroker", "InMemoryConnector"]
