"""Logging in with OpenID Connect, end to end in Chromium: a local provider
(oidc-provider-mock) on loopback, the dashboard configured for it through
`.streamlit/secrets.toml`'s [auth] section (Streamlit's st.login), a person who logs in,
gets the role of their verified e-mail address, acts, reloads, and logs out."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    dashboard,
    free_port,
    seed_desk,
    settled,
    shot,
    sidebar,
    wait_for,
)
from tracker.db import get_engine
from tracker.models import ReviewEvent

pytestmark = pytest.mark.browser
EMAIL = "ana@example.org"


@contextlib.contextmanager
def provider():
    """oidc-provider-mock on 127.0.0.1 (the browser, the redirect URI and the app must all
    use the same host, or the login state cookie is not sent back)."""
    mock = pytest.importorskip("oidc_provider_mock", reason="pip install oidc-provider-mock")
    serving = pytest.importorskip("werkzeug.serving")
    app = mock.app(
        require_client_registration=False,
        user_claims=[
            mock.User(sub=EMAIL, claims={"email": EMAIL, "email_verified": True, "name": "Ana"})
        ],
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_login_names_the_reviewer_by_verified_email_and_survives_a_reload(tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    engine = get_engine(url)
    seed_desk(engine, per_article=5, articles=1)
    port = free_port()
    with provider() as issuer:
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "claim-tracker-test"\n'
            'client_secret = "not-a-secret"\n'
            f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
        )
        env = {"TRACKER_ADMINS": EMAIL, "HOME": str(tmp_path)}  # no ~/.streamlit of ours
        args = ["--secrets.files", str(secrets_file)]
        with (
            dashboard(url, env=env, cwd=tmp_path, port=port, args=args) as address,
            sync_api.sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(30_000)
            # The provider's page loads a stylesheet from a CDN: there is no network here.
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith(("http://127.0.0.1", "data:"))
                    else route.abort()
                ),
            )
            page.goto(address + "/claim?claim=1")
            sidebar(page).get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{issuer}/oauth2/authorize?**")
            page.locator('input[name="sub"]').fill(EMAIL)
            page.get_by_role("button", name="Authorize", exact=True).click()
            page.wait_for_url(f"{address}/**")
            sidebar(page).get_by_text(f"Signed in as {EMAIL}").wait_for()
            sidebar(page).get_by_text("Role: admin").wait_for()  # TRACKER_ADMINS (drawn next)

            page.goto(address + "/claim?claim=1")
            page.get_by_role("heading", name="Claim 1").wait_for()
            settled(page)
            page.get_by_text("checked", exact=True).first.click()
            page.get_by_role("button", name="Save", exact=True).click()
            wait_for(lambda: _actors(engine) == [EMAIL])

            page.reload()  # the login is a cookie: it survives
            sidebar(page).get_by_text(f"Signed in as {EMAIL}").wait_for()
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="People").click()
            page.get_by_role("heading", name="People").wait_for()
            page.get_by_role("button", name="Set role").wait_for()  # an admin's page
            shot(page, "login-people")

            sidebar(page).get_by_role("button", name="Log out").click()
            page.get_by_role("button", name="End session").click()  # the provider asks
            page.wait_for_url(f"{address}/**")
            sidebar(page).get_by_role("button", name="Log in").wait_for()
            page.reload()
            sidebar(page).get_by_role("button", name="Log in").wait_for()
            assert sidebar(page).get_by_text("Signed in as").count() == 0
            browser.close()


def _actors(engine) -> list[str]:
    with Session(engine) as session:
        return [e.actor for e in session.exec(select(ReviewEvent))]
