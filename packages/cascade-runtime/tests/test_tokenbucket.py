"""The token bucket behind rate_limit constraints."""

from __future__ import annotations

import pytest

from cascade.runtime.constraints._tokenbucket import TokenBucket


def test_token_bucket_rejects_non_positive_rates() -> None:
    """A bucket needs a positive rate; its capacity is never below one."""
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0, 1)
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(1, 1).retune(-1, 1)
    assert TokenBucket(0.1, 0.1).capacity == 1.0
