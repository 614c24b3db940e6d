"""A scheduled CLI sync writes the app's database while users load pages in a real browser.

`streamlit run app.py` serves; `python -m returns_core sync` (what cron runs) syncs a served
sandbox shop into the same DuckDB file; meanwhile headless Chromium loads every page, again and
again. Every page loads, none shows an exception or DuckDB's "Could not set lock", the sync
succeeds, and its returns then show up in the app.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from returns_core.store.db import Database
from tests.browser.conftest import ROOT, open_page
from tests.conftest import wait_until
from tests.reliability import LOCK_TEXT, SearchGate, connect, steady_clock, truth_payloads

pytestmark = pytest.mark.browser

PAGES = {  # path -> the title a loaded page shows
    "/": "Returns",
    "/reasons": "Reason Analytics",
    "/refunds": "Refunds",
    "/review": "Review Queue",
    "/reconciliation": "Reconciliation",
    "/sync-history": "Sync history",
    "/accounts": "Accounts",
    "/?q=4&type=Refund": "Returns",
}


def assert_page_is_fine(page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    body = page.locator("body").inner_text()
    assert LOCK_TEXT not in body and "Traceback" not in body and "StoreBusyError" not in body


def test_every_page_loads_while_a_cli_sync_writes_the_same_database(page, app_server, make_sandbox, monkeypatch):
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)  # the app's key is the key file beside its database
    open_page(page, app_server.url)  # the app has created its store (and the demo shop)
    sandbox = make_sandbox(seed=11, shops=1, returns=1000, wall_clock=steady_clock())  # not the demo shop
    with sandbox.serve() as server:
        db = Database(app_server.db_path)
        account, _ = connect(db, sandbox, server.url, name="Cron Shop")
        # the sandbox answers the sync one page per page load, so the sync writes while we browse
        gate = SearchGate(sandbox, let_through=1)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
        env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        sync = subprocess.Popen(
            [sys.executable, "-m", "returns_core", "--db", str(app_server.db_path), "sync", "--account", "Cron Shop"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err_lines: list[str] = []
        first_page = threading.Event()

        def read_progress() -> None:
            for line in sync.stderr:
                err_lines.append(line)
                if ": page 1," in line:
                    first_page.set()
            first_page.set()

        threading.Thread(target=read_progress, daemon=True).start()
        try:
            assert first_page.wait(60) and sync.poll() is None, "".join(err_lines)
            loaded_during_sync = []
            for path, title in PAGES.items():
                gate.allow(1)  # the sync writes its next page while this one loads
                open_page(page, app_server.url + path)
                expect(page.get_by_role("heading", name=title).first).to_be_visible()
                assert_page_is_fine(page)
                if sync.poll() is None:
                    loaded_during_sync.append(path)
            assert len(loaded_during_sync) == len(PAGES), "the sync ended before the pages were loaded"
        finally:
            gate.release()  # full speed for the rest of the sync
            out, _ = sync.communicate(timeout=180)
        stderr = "".join(err_lines)
        assert sync.returncode == 0, stderr
        assert LOCK_TEXT not in stderr + out and "Traceback" not in stderr + out

        # the cron sync's returns show up in the app (within its few seconds of cache)
        total = len(truth_payloads(sandbox, account.shop_id))
        shown = re.compile(rf"Showing 1–50 of \*?\*?{total:,} returns")

        def app_shows_them() -> bool:
            open_page(page, f"{app_server.url}/?{urlencode({'account': account.label})}")
            return bool(shown.search(page.locator("body").inner_text()))

        wait_until(app_shows_them, "the app to show the cron sync's returns", timeout=60, every=0.5)
        assert_page_is_fine(page)

    log = app_server.log_path.read_text()
    assert LOCK_TEXT not in log and "Traceback" not in log
