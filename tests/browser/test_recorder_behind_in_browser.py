"""The dashboard's header says a recorder that does not keep up with the broker while it
happens (issue 91): what the recorder noted in the history (`History.recorders`), read every few
seconds, shown until it notes it caught up; text from the history shown, never run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from cascade.history import History, RecorderNote
from cascade.testkit import BrokerEndpoint

from .conftest import Dashboard
from .test_dashboard_in_browser import XSS, no_script_errors, wait

pytestmark = pytest.mark.integration


def _note(db: str, behind: bool) -> None:
    now = time.time()
    with History(db, mode="write") as history:
        history.note_recorder(
            RecorderNote(XSS, now, now - 42 if behind else None, 45_000 if behind else 0,
                         12.5 if behind else 0.0, 1_200 if behind else 0, 3_000)
        )  # fmt: skip


def test_the_header_says_a_recorder_behind_while_it_is(
    browser: Any, mqtt_broker: BrokerEndpoint, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path}/history.db"
    _note(db, behind=True)
    board = Dashboard("--host", mqtt_broker.host, "--port", str(mqtt_broker.port), "--db", db)
    try:
        browser.get(board.url)
        said = wait(browser, lambda d: d.find_element(By.ID, "recorders").is_displayed())
        assert said
        text = browser.find_element(By.ID, "recorders").text
        assert text.startswith(f"recorder {XSS} behind since ")
        assert "45,000 queued (12.5s), 1,200 dropped, 3,000 shed" in text
        _note(db, behind=False)  # it caught up: the header says nothing more of it
        wait(browser, lambda d: not d.find_element(By.ID, "recorders").is_displayed())
        assert no_script_errors(browser) == []
    finally:
        code = board.stop()
    assert code == 0, "".join(board.output)
