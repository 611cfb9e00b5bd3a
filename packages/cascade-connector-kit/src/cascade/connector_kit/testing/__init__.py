"""Test doubles with real semantics, to test against instead of mocks.

``InMemoryBroker`` behaves like an MQTT broker in one process (retained
messages, wildcard routing, wills); ``InMemoryConnector`` implements
:class:`cascade.interfaces.Connector` on top of it. ``received`` and ``telemetry`` make
messages as a reader's callback gets them, for tests of readers.
"""

from ._memory import InMemoryBroker, InMemoryConnector
from ._messages import received, telemetry

__all__ = ["InMemoryBroker", "InMemoryConnector", "received", "telemetry"]
