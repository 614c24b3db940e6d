"""The Returns page in a real browser, on a store synced from the demo shop: the way back from a return
keeps the filters; on a phone "Waiting for you" is on the first screen; at 1440 px every column fits and a
page of 50 rows has no scroll box of its own; the sidebar's "Show them" shows exactly what it counts.

Screenshots of every step go to $RETURNS_SHOTS (default /tmp/shots/grid).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from returns_core import domain
from returns_core.filters import ReturnFilters
from returns_core.store import returns
from returns_core.store.db import Database
from tests.browser.conftest import RUN_TIMEOUT_MS, app_run, wait_for_app_idle
from tests.browser.test_decide import DESKTOP, PHONE, grid_row, synced_app, viewer  # noqa: F401

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("RETURNS_SHOTS", "/tmp/shots/grid"))


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def open_at(context, url: str):
    """A new tab on `url`, once its first script run has finished (and the grid has drawn, if any)."""
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("() => (window.__finishedRuns || 0) > 0", timeout=RUN_TIMEOUT_MS)
    wait_for_app_idle(page)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    return page


def open_row(page, key: str, row: int) -> None:
    """Open a row's return from its Actions cell: a ⋮ menu (Open, Decide) or, with nothing to decide, Open."""
    grid = page.locator(f".st-key-{key}")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    with app_run(page):
        # Actions is pinned first, after the row ticks (36 px); rows and header are 35 px
        page.mouse.click(box["x"] + 36 + 23, box["y"] + 35 * (row + 1) + 17)
        opened = page.get_by_role("heading", name=re.compile(r"^Return \d"))
        menu = page.get_by_role("menuitem", name="Open")
        expect(menu.or_(opened)).to_be_visible()
        if menu.is_visible():
            menu.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Return \d"))).to_be_visible()


def open_filters(page) -> None:
    """Unfold "Filters and sort" (no script run: the widgets are there, folded)."""
    page.get_by_text("Filters and sort").click()
    expect(page.locator(".st-key-q input")).to_be_visible()


def summary_line(page):
    """The one line above the folded filters: how many returns, and which filters are active."""
    return page.locator(".st-key-returns_summary [data-testid='stMarkdown']").first


def summary(page) -> str:
    return summary_line(page).inner_text()


def showing(page) -> str:
    """The caption under the grid: 'Showing 51–100 of 887 returns · …'."""
    return page.get_by_text(re.compile(r"^Showing [\d,]+–[\d,]+ of")).inner_text()


def test_back_after_opening_a_return_keeps_the_filters(viewer, synced_app):  # noqa: F811 - the fixtures of test_decide
    page = open_at(viewer(DESKTOP), f"{synced_app.url}/?type=Refund&status=Refund&status=Requested"
                                    "&sort=Refund+Total&order=Oldest+%2F+lowest+first&page=2")
    grid = page.locator(".st-key-returns_grid")
    expect(grid).to_be_visible()
    filtered, where = summary(page), showing(page)
    assert "Type: Refund" in filtered and "sorted by Refund Total, oldest / lowest first" in filtered
    assert where.startswith("Showing 51–100 of ")
    first = grid_row(page, "returns_grid", 0)
    shot(page, "back-1-filtered-page-2")

    # open the first row's return, then the browser's Back button
    open_row(page, "returns_grid", 0)
    shot(page, "back-2-the-return")
    with app_run(page):
        page.go_back()
    expect(summary_line(page)).to_have_text(filtered)
    assert showing(page) == where and grid_row(page, "returns_grid", 0) == first
    assert "id=" not in page.url  # the return's own parameters are gone from the list's address
    shot(page, "back-3-after-browser-back")

    # and the page's own "Back to Returns" link
    open_row(page, "returns_grid", 0)
    with app_run(page):
        page.get_by_role("link", name="Back to Returns").click()
    expect(summary_line(page)).to_have_text(filtered)
    assert showing(page) == where and grid_row(page, "returns_grid", 0) == first
    shot(page, "back-4-after-back-to-returns")


def test_at_390x844_the_waiting_for_you_list_is_on_the_first_screen(viewer, synced_app):  # noqa: F811 - the fixtures of test_decide
    page = open_at(viewer(PHONE), synced_app.url)
    heading = page.get_by_role("heading", name=re.compile(r"Waiting for you · [\d,]+"))
    waiting = page.locator(".st-key-waiting_grid")
    expect(heading).to_be_in_viewport()
    expect(waiting).to_be_visible()
    box = waiting.bounding_box()
    assert box["y"] + 4 * 35 <= PHONE["height"], f"the list's first three rows end below the screen: {box}"
    assert grid_row(page, "waiting_grid", 0), "the list has a first row"
    # Sync Returns, though the sidebar is folded away
    sync = page.locator(".st-key-returns_sync").get_by_role("button", name="Sync Returns")
    expect(sync).to_be_in_viewport()
    expect(page.get_by_test_id("stSidebar")).not_to_be_in_viewport()
    grid_top = page.locator(".st-key-returns_grid").bounding_box()["y"]
    assert grid_top < 1.25 * PHONE["height"], f"the whole list starts {grid_top:.0f} px down"
    shot(page, "phone-1-first-screen")
    page.locator(".st-key-returns_grid").scroll_into_view_if_needed()
    shot(page, "phone-2-the-list")
    open_filters(page)
    shot(page, "phone-3-filters-open")


def test_at_1440_every_column_fits_and_a_page_shows_its_50_rows_without_a_scroll_box(viewer, synced_app):  # noqa: F811 - the fixtures of test_decide
    page = open_at(viewer(DESKTOP), synced_app.url)
    shot(page, "desktop-1-first-screen")
    scroller = page.locator(".st-key-returns_grid .dvn-scroller").first
    size = scroller.evaluate("e => ({sw: e.scrollWidth, cw: e.clientWidth, sh: e.scrollHeight, ch: e.clientHeight})")
    assert size["sw"] <= size["cw"], f"the grid scrolls sideways: {size}"
    assert size["sh"] <= size["ch"], f"the grid scrolls inside its own box: {size}"
    assert grid_row(page, "returns_grid", 49), "the 50th row is drawn"
    header = page.locator(".st-key-returns_grid th").all_inner_texts()
    # Actions first (a phone reaches it), then the seed columns in their order, headers whole
    assert header[:4] == ["Actions", "Return ID", "Order ID", "Account"], header
    assert header[-3:] == ["Refund", "Due By", "Flags"], header
    open_filters(page)
    shot(page, "desktop-2-filters-open")


def test_show_them_in_the_sidebar_shows_exactly_the_returns_it_counts(viewer, synced_app):  # noqa: F811 - the fixtures of test_decide
    db = Database(synced_app.db_path)
    due = returns.count_returns(db, ReturnFilters(due_soon=True))
    assert due, "the demo shop has returns due within 24 h"
    page = open_at(viewer(DESKTOP), f"{synced_app.url}/?type=Return&q=40")  # filters the count knows nothing of
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stMetric").filter(has_text="Due in 24 h")).to_contain_text(f"{due:,}")
    with app_run(page):
        sidebar.get_by_role("link", name="Show them").first.click()
    # the demo shop's cancellations wait too: the count names each kind
    due_cancellations = returns.count_returns(db, ReturnFilters(due_soon=True, types=(domain.CANCELLATION,)))
    counted = domain.count_in_words(due - due_cancellations, due_cancellations)
    expect(summary_line(page)).to_contain_text(f"{counted} · Due within 24 h")
    expect(page.get_by_text(f"Showing exactly the {counted} due within 24 h")).to_be_visible()
    assert "Type:" not in summary(page) and "Search" not in summary(page)
    shot(page, "show-them")
