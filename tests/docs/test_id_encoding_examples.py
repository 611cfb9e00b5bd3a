"""docs/protocol.md, "Identity and topic levels": its example topics are what the builders
make of ``worker1.example.com`` in the project ``team.one``."""

from __future__ import annotations

from pathlib import Path

from cascade.interfaces import decode_level, encode_level, events_topic, status_topic

ROOT = Path(__file__).resolve().parents[2]


def test_the_dotted_ids_example_is_what_the_builders_make() -> None:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    source, project = "worker1.example.com", "team.one"
    status = status_topic(source)
    events = events_topic("local", project, "{run_id}")
    assert f"`{status}`" in page
    assert f"`{events}`" in page
    assert status == "cascade/status/worker1%2Eexample%2Ecom"
    assert decode_level(encode_level(source)) == source
