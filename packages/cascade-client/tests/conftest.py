"""The client's tests run against an in-memory broker (the fixture: ``cascade.testkit``'s)."""

from __future__ import annotations

from cascade.testkit import broker as broker  # fixture
