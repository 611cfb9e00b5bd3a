"""The docs suite: every example in the READMEs and docs/, run against a private mosquitto."""

from __future__ import annotations

import pytest

from cascade.testkit import mosquitto_broker  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration
