"""The protocol's timestamps as the history reads them: as ``parse_timestamp`` reads them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from cascade.history._times import parse_time
from cascade.reader import parse_timestamp

_ZONES = st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))]
)


@given(st.datetimes(timezones=_ZONES))
def test_what_engines_send_is_read_as_parse_timestamp_reads_it(moment: datetime) -> None:
    """Any aware moment as ``isoformat`` writes it (an engine's ``ts``), in any offset."""
    text = moment.isoformat()
    assert parse_time(text) == parse_timestamp(text)
    assert parse_time(text.replace("+00:00", "Z")) == parse_timestamp(text.replace("+00:00", "Z"))


@given(
    st.text(max_size=80)
    | st.from_regex(r"\A\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d{1,12})?)?(\+00:00)?\Z")
)
@example("2026-11-20T12:00:00." + "0" * 60 + "+00:00")  # too long to be a timestamp
@example("9999-12-31T23:59:59.999999+00:00")
@example("0001-01-01T00:00:00+00:00")
@example("2026-11-20T12:00:00")  # no offset: UTC
def test_any_text_is_read_as_parse_timestamp_reads_it(text: str) -> None:
    """Whatever a hostile sender writes there: the same time, or ``None`` alike."""
    assert parse_time(text) == parse_timestamp(text)
