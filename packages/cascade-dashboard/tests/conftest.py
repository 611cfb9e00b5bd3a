"""The dashboard on an in-memory broker; and, for the tests that check the dashboard says what
`cascade` says, the command on the same broker (the fixtures: ``cascade.testkit``'s)."""

from __future__ import annotations

from cascade.testkit import broker as broker  # fixture
from cascade.testkit import hub as hub  # fixture
from cascade.testkit import invoke as invoke  # fixture
from cascade.testkit import own_default_history as own_default_history  # fixture
from cascade.testkit import publish_retained as publish_retained  # fixture
