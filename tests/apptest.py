"""The one way tests run the app: AppTest on the real `app.py`, and small readers of what it drew.

    at = open_app()                                   # the Returns grid, as a new browser session
    at = open_app("app_pages/detail.py", id="R2")     # the query parameters, then that page
    at = open_app("app_pages/review_queue.py", login=True, user=ANALYST)

Every page runs under the app's own navigation and sidebar, as a user sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"

# Login configured in secrets.toml (Streamlit's st.login), and who holds which role
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "not-a-secret",
        "client_id": "returns-desk", "client_secret": "not-a-secret",
        "server_metadata_url": "https://id.example.invalid/.well-known/openid-configuration"}
ROLES = {"admins": ["owner@shop.example"], "managers": ["boss@shop.example"], "analysts": ["*"]}


def new_session(*, actor: str | None = None, user: dict | None = None, login: bool = False,
                secrets: dict[str, Any] | None = None, timeout: float = 60, **query: str | list[str]) -> AppTest:
    """A new browser session on app.py, not run yet.

    `actor`: the name typed in the sidebar (without login); `login`: login and roles configured;
    `user`: who st.user says is there; `secrets`: more of secrets.toml; `query`: the link's parameters.
    """
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if login:
        at.secrets["auth"] = AUTH
        at.secrets["roles"] = ROLES
    for section, values in (secrets or {}).items():
        at.secrets[section] = values
    if user is not None:
        at.user = user
    if actor and not login:
        at.session_state["actor_name"] = actor
    for key, value in query.items():
        at.query_params[key] = value
    return at


def open_app(page: str | None = None, /, *, actor: str | None = None, user: dict | None = None, login: bool = False,
             secrets: dict[str, Any] | None = None, **query: str | list[str]) -> AppTest:
    """Run the app once (a new browser session with these query parameters), then go to `page`.

    `page` is positional only, so a link's own `page` parameter (the grid's page number) is a query key.
    """
    at = new_session(actor=actor, user=user, login=login, secrets=secrets, **query)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


# --- readers --------------------------------------------------------------------------------


def grid(at: AppTest, key: str = "returns_grid") -> pd.DataFrame:
    frames = [d for d in at.dataframe if d.proto.id.endswith(key) or key in d.proto.id]
    return frames[0].value if frames else at.dataframe[0].value


def return_ids(at: AppTest, key: str = "returns_grid") -> list[str]:
    return list(grid(at, key)["Marketplace Return ID"])


def texts(at: AppTest) -> str:
    """Every text, caption and message on the screen (sidebar included), one per line."""
    parts = [e.value for e in (*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


def metric(at: AppTest, label: str) -> str:
    """The value of the metric with this label (the sidebar's included)."""
    return next(m.value for m in at.metric if m.label == label)


def button(at: AppTest, label: str):
    """The first button with this label."""
    return next(b for b in at.button if b.label == label)


def sidebar_text(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in (*at.sidebar.success, *at.sidebar.error, *at.sidebar.caption))


def run_until(at: AppTest, done: Callable[[AppTest], Any], timeout: float = 60) -> AppTest:
    """Rerun (as the progress fragment would) until `done(at)` holds."""

    def rerun_and_check() -> bool:
        if done(at):
            return True
        at.run()
        assert not at.exception, at.exception
        return False

    wait_until(rerun_and_check, "the background sync to show its outcome", timeout=timeout, every=0.1)
    return at
