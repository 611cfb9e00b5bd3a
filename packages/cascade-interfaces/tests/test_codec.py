"""Encoding payloads for the wire and decoding what arrives."""

from __future__ import annotations

import pytest

from cascade.interfaces import Constraint, InvalidMessageError, decode_payload, encode_payload


def test_encode_forms() -> None:
    """Mappings and schema objects become JSON; text and bytes go as they are."""
    assert encode_payload({"a": 1}) == b'{"a":1}'
    assert encode_payload("hé") == "hé".encode()
    assert encode_payload(b"\x00raw") == b"\x00raw"
    assert encode_payload(Constraint.pause("global")).startswith(b'{"id":"pause-global"')
    with pytest.raises(TypeError, match="payload must be"):
        encode_payload(42)  # type: ignore[arg-type]


def test_empty_payload_decodes_to_empty_object() -> None:
    """An empty payload (a cleared retained topic) is ``{}``."""
    assert decode_payload(b"") == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1]", "not an array"),
        (b'"s"', "not a string"),
        (b"null", "not null"),
        (b"1", "not a number"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"id": "\xff"}', "not valid UTF-8"),
        (b'{"id": "\xed\xa0\x80"}', "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": 1e999}', "not valid JSON"),
    ],
)
def test_bad_payloads_rejected(raw: bytes, reason: str) -> None:
    """Anything but a JSON object is rejected with a reason."""
    with pytest.raises(InvalidMessageError, match=reason):
        decode_payload(raw)
