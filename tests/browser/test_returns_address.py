"""The Returns grid answers at /returns too, not only at the root (issue 15, item 14).

Streamlit serves the default page at the root and ignores its url_path, so a bookmark or link to
/returns showed "Page not found". In a real browser: /returns shows the grid, as / does.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from returns_core import sample_data as sample
from returns_core.store.db import Database
from tests.browser.conftest import ROOT, open_page

pytestmark = pytest.mark.browser

SHOP = "7000000009"


def test_the_returns_address_opens_the_returns_grid(page, app_server):
    db = Database(app_server.db_path)  # before the app's first page: no demo shop, this shop instead
    sample.add_account(db, SHOP, "Address Shop")
    sample.write_shop_returns(db, sample.synthetic_returns(60, (SHOP,)))
    shots = ROOT / "test-results"
    shots.mkdir(exist_ok=True)
    for address in ("", "returns"):
        open_page(page, f"{app_server.url}/{address}")
        expect(page.get_by_text("Page not found")).to_have_count(0)
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        expect(page.get_by_text("60 returns").first).to_be_visible()  # the grid's count of what it shows
        expect(page.get_by_test_id("stSidebarNavLink").filter(has_text="Returns").first).to_be_visible()
        assert page.url.rstrip("/") == f"{app_server.url}/{address}".rstrip("/"), "the address was kept"
        page.screenshot(path=str(shots / f"returns-address-{address or 'root'}.png"))
