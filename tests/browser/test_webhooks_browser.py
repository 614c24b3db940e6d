"""In a real browser: the open Returns grid follows TikTok by itself. `streamlit run server.py` (as
run.sh starts it) with the demo shop: its in-process sandbox delivers webhooks to the app's own
receiver. A cron sync fills the store; the seller then decides a return from another process; the
page open in the browser shows the new status without any click or Sync."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT, RUN_TIMEOUT_MS, app_env, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

APPROVE_FOR = {"SELLER_RESPOND_REFUND": "APPROVE_REFUND", "SELLER_RESPOND_RETURN": "APPROVE_RETURN",
               "SELLER_RESPOND_RECEIVE_PACKAGE": "APPROVE_RECEIVED_PACKAGE",
               "SELLER_RESPOND_REPLACEMENT": "APPROVE_REPLACEMENT"}


@pytest.fixture
def demo_server(tmp_path, monkeypatch) -> Iterator[str]:
    """`streamlit run server.py` over a fresh store with the demo shop on; the store synced once by cron."""
    env = app_env(RETURNS_DB=str(tmp_path / "returns.duckdb"), RETURNS_DEMO="1")
    for key in ("RETURNS_DB", "RETURNS_DEMO"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)
    with running_app(tmp_path, env, script="server.py") as url:
        synced = subprocess.run([sys.executable, "-m", "returns_core", "sync"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert synced.returncode == 0, synced.stderr
        yield url


def test_the_open_grid_shows_tiktoks_change_without_a_click(page, demo_server):
    from returns_core import demo
    from returns_core.accounts import list_accounts
    from returns_core.config import db_path
    from returns_core.store.db import Database
    from returns_core.tiktok_session import tiktok_session

    db = Database(db_path())
    return_id, action, status = next((r, a, s) for r, a, s in db.rows(
        "SELECT return_id, json_extract_string(payload, '$.seller_next_action_response[0].action'), status "
        "FROM returns ORDER BY created_at DESC") if a in APPROVE_FOR)
    page.goto(f"{demo_server}/?q={return_id}")
    # the per-status counts under the filters (folded away, but on the page)
    count = page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"Requested\s*\d"))
    expect(count).to_contain_text(re.compile(rf"{status}\s*1\b"), timeout=RUN_TIMEOUT_MS)

    # the seller decides (as from another copy of the app, or TikTok Seller Center): nobody touches this page
    account = next(a for a in list_accounts(db) if a.api_base == demo.DEMO_API_BASE)
    with tiktok_session(db, account) as client:
        client.approve_return(return_id, APPROVE_FOR[action], idempotency_key=str(uuid.uuid4()))

    expect(count).to_contain_text(re.compile(rf"{status}\s*0\b"), timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Last webhook event")
