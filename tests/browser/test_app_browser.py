"""The app in a real browser: a fresh database, the demo shop, Sync Returns, grid, detail, reasons."""

from __future__ import annotations

import csv
import re

import pytest
from playwright.sync_api import expect

from returns_core import domain
from returns_core.filters import ReturnFilters
from returns_core.store import returns
from returns_core.store.db import Database
from tests.browser.conftest import RUN_TIMEOUT_MS, app_run, open_page, wait_for_app_idle

pytestmark = pytest.mark.browser


def no_exception(page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def test_fresh_database_sync_demo_shop_then_grid_detail_and_reason_chart(page, app_server):
    # a fresh database starts with the demo shop, clearly marked as sandbox data
    open_page(page, app_server.url)
    no_exception(page)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("SANDBOX", exact=False).first).to_be_visible()
    expect(page.get_by_text("No returns yet")).to_be_visible()

    # Sync Returns runs in the background; the sidebar reports the counts when it is done
    page.locator(".st-key-sidebar_sync button").first.click()  # a button with help renders twice
    # the demo shop has both queues: each kind is named
    expect(sidebar.get_by_text(re.compile(r"synced [\d,]+ returns and [\d,]+ cancellations \([\d,]+ pages?\): "
                                          r"[\d,]+ new"))).to_be_visible(timeout=120_000)
    wait_for_app_idle(page)
    expect(page.get_by_text(re.compile(r"Showing 1–50 of \*?\*?[\d,]+"))).to_be_visible()
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
    no_exception(page)

    # the export holds exactly the filtered rows
    db = Database(app_server.db_path)
    refunds = returns.count_returns(db, ReturnFilters(types=("Refund",)))
    open_page(page, f"{app_server.url}/?type=Refund")
    with page.expect_download(timeout=RUN_TIMEOUT_MS) as download:
        page.locator(".st-key-returns_export_csv button").first.click()
    with open(download.value.path(), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == refunds > 0
    assert {row["Type"] for row in rows} == {"Refund"}

    # the detail page opens straight from a link. The newest row may be a cancellation, depending on the
    # sandbox's clock, so the return to open is asked for by kind.
    first = returns.grid_page(db, ReturnFilters(kinds=(domain.RETURN_KIND,)), limit=1).iloc[0]
    return_id, shop_id = first["Marketplace Return ID"], first["Account ID"]
    open_page(page, f"{app_server.url}/detail?id={return_id}&shop={shop_id}")
    expect(page.get_by_role("heading", name=f"Return {return_id}")).to_be_visible()
    # the decision card: what the buyer asks, and every line item one click away
    expect(page.get_by_text("the buyer asks for").first).to_be_visible()
    expect(page.get_by_text("Every line item field")).to_be_visible()
    no_exception(page)

    # the reason analytics page draws its charts from the synced data
    open_page(page, f"{app_server.url}/reasons")
    expect(page.get_by_role("heading", name="Reason Analytics")).to_be_visible()
    expect(page.get_by_test_id("stPlotlyChart").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    no_exception(page)


def test_a_link_with_filters_reproduces_the_view(page, app_server):
    open_page(page, f"{app_server.url}/?type=Refund&due=true")  # the default page lives at /
    # the filters are folded away; their summary says what the link set
    expect(page.locator(".st-key-returns_summary").get_by_text(re.compile(r"Type: Refund"))).to_be_visible()
    no_exception(page)
    # the sidebar navigation keeps working
    with app_run(page):
        page.get_by_test_id("stSidebarNavLink").filter(has_text="Refunds").click()
    expect(page.get_by_role("heading", name="Refunds")).to_be_visible()
    no_exception(page)
