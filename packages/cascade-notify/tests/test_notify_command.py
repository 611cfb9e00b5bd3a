"""`cascade notify`: a webhook inside is refused with a message unless --allow-destination names
it; nothing is connected to (the refusal comes before the broker and any post)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli import app


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:9", "169.254.169.254", "[::1]:9", "2130706433", "localhost:9",
        "metadata.google.internal",
    ],
)  # fmt: skip
def test_an_inside_webhook_is_refused(host: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["notify", "--host", "127.0.0.1:1", "--state", str(tmp_path / "s"), "--duration", "1"],
        env={"CASCADE_NOTIFY_WEBHOOK": f"http://{host}/hooks/s3cr3t"},
    )
    assert result.exit_code == 2, result.output
    assert "is refused" in result.output
    assert "--allow-destination" in result.output
    assert "s3cr3t" not in result.output


def test_a_bad_allowed_destination_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["notify", "--allow-destination", "10.0.0.0/40", "--state", str(tmp_path / "s")],
        env={"CASCADE_NOTIFY_WEBHOOK": "https://hooks.example.net/x"},
    )
    assert result.exit_code == 2, result.output
    assert "neither a host name nor a network" in result.output
