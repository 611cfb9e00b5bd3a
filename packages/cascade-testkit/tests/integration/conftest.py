"""A private mosquitto per test for the testkit's own integration tests."""

from __future__ import annotations

import pytest

from cascade.testkit import mosquitto_broker  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
