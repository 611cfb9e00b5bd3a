"""Signing in to a team's dashboard in a real headless Chromium: the page's "Sign in" link,
the OpenID provider's own form (a real provider over HTTP), back on the page signed in, and
"Sign out"."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from oidc_provider_mock import User, run_server_in_thread
from selenium.webdriver.common.by import By

from cascade.testkit import BrokerEndpoint, free_port

from .conftest import Dashboard
from .test_dashboard_in_browser import no_script_errors, wait

# the provider (oidc-provider-mock 0.3) calls Authlib's server side the way it did before 1.6
pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

ROLES = '[[grant]]\nrole = "operator"\nscopes = ["org:acme"]\ngroups = ["data-eng"]\n'
ALICE = User(sub="alice", claims={"email": "alice@example.com", "email_verified": True,
                                  "groups": ["data-eng"]})  # fmt: skip


@pytest.fixture
def issuer() -> Iterator[str]:
    """A real OpenID provider on a free port, in a thread of the test process."""
    with run_server_in_thread(user_claims=[ALICE]) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def team_dashboard(
    mqtt_broker: BrokerEndpoint, issuer: str, tmp_path: Path
) -> Generator[Dashboard, None, None]:
    """`cascade dashboard --roles ... --oidc-issuer ...` on the test's broker."""
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES, encoding="utf-8")
    port = free_port()
    board = Dashboard(
        "--oidc-client-secret", "browser-test-client-secret",
        "--listen", f"127.0.0.1:{port}", "--host", mqtt_broker.host,
        "--port", str(mqtt_broker.port), "--roles", str(roles), "--oidc-issuer", issuer,
        "--oidc-client-id", "cascade-dashboard", "--public-url", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    yield board
    code = board.stop()
    assert code == 0, "".join(board.output)
    assert "Traceback" not in "".join(board.output)


def shown(driver: Any, element_id: str) -> bool:
    """Whether the element is there and not hidden."""
    found = driver.find_elements(By.ID, element_id)
    return bool(found) and found[0].is_displayed()


def test_sign_in_through_the_providers_page_and_out_again(
    browser: Any, team_dashboard: Dashboard, issuer: str
) -> None:
    """Not signed in, the page offers "Sign in"; the provider's form as alice brings the page
    back signed in, with her name and a "Sign out" button that ends the session."""
    assert "sessions end when this dashboard restarts" in "".join(team_dashboard.output)
    browser.get(team_dashboard.url + "runs/abc")  # a run's address: it survives signing in
    wait(browser, lambda d: shown(d, "sign-in"))
    assert not shown(browser, "who")
    browser.find_element(By.ID, "sign-in").click()
    wait(browser, lambda d: d.current_url.startswith(issuer + "/oauth2/authorize"))
    browser.find_element(By.NAME, "sub").send_keys("alice")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]:not([name])").click()
    wait(browser, lambda d: d.current_url.startswith(team_dashboard.url)
         and "/auth/callback" not in d.current_url)  # fmt: skip
    assert browser.current_url == team_dashboard.url + "runs/abc"  # where the link was followed
    wait(browser, lambda d: shown(d, "who"))
    assert browser.find_element(By.ID, "who").text == "alice@example.com (operator)"
    assert shown(browser, "sign-out")
    assert not shown(browser, "sign-in")
    browser.find_element(By.CSS_SELECTOR, "#sign-out button").click()
    # the policy's form-action lets the sign-out form end at the provider's end_session page
    wait(browser, lambda d: d.current_url.startswith(issuer + "/oauth2/end_session"))
    browser.get(team_dashboard.url)
    wait(browser, lambda d: shown(d, "sign-in"))
    assert not shown(browser, "who")
    # the provider's pages are not ours
    assert [e for e in no_script_errors(browser) if team_dashboard.url in e] == []
