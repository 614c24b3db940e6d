"""AppTest: the return rate on Reason Analytics (issue 13, part 2), through the real app.py.

Alpha's shop holds the spiky history of tests/analytics_fixtures.py ending yesterday, and units sold for its
last 80 days (BLND 20 a day, TEE 30, MUG 10, LAMP-9 1); Beta has returns but no units sold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from returns_core.filters import ReturnFilters
from returns_core.store import analytics
from returns_core.store.db import utcnow
from returns_core.store.sales import SalesFetch, save_fetch
from returns_core.tiktok.client import SkuSales
from tests import ui_fixtures as ui
from tests.analytics_fixtures import BLND, DEF, MUG, SIZE, TEE, insert, spiky_rows
from tests.apptest import open_app, texts

PAGE = "app_pages/reasons.py"
BETA_LABEL = f"{ui.BETA_NAME} ({ui.BETA})"
PER_DAY = {BLND: 20, TEE: 30, MUG: 10, "LAMP-9": 1}


def yesterday():
    return utcnow().date() - timedelta(days=1)


@pytest.fixture
def store(app_db):
    ui.add_account(app_db, ui.ALPHA, ui.ALPHA_NAME)
    ui.add_account(app_db, ui.BETA, ui.BETA_NAME)
    insert(app_db, spiky_rows(as_of=yesterday(), shop=ui.ALPHA))
    noon = datetime.combine(utcnow().date(), datetime.min.time()) + timedelta(hours=12)
    insert(app_db, [(f"B{i}", ui.BETA, "Refund", "Refund", SIZE if i % 2 else DEF, noon - timedelta(days=3 * i),
                     noon - timedelta(days=3 * i - 1), "EUR", "4.20", [(MUG, "4.20")]) for i in range(6)])
    first = yesterday() - timedelta(days=79)
    days = [first + timedelta(days=n) for n in range(80)]
    save_fetch(app_db, ui.ALPHA, SalesFetch(first, yesterday(), {
        day: [SkuSales("ID-" + sku, "P-" + sku, units, units, None, None) for sku, units in PER_DAY.items()]
        for day in days}, {}))
    return app_db


def last_30_days() -> ReturnFilters:
    today = utcnow().date()
    return ReturnFilters(created_from=today - timedelta(days=29), created_to=today)


def test_the_rate_table_shows_units_returned_and_sold_with_a_range_and_marks_too_few_sales(store):
    at = open_app(PAGE)
    assert not at.exception, at.exception
    assert "Return rate" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "Units sold" in d.value.columns)
    rows = {row["SKU"]: row for row in table.to_dict("records")}
    expected = analytics.return_rates(store, last_30_days(), "sku")
    for row in expected.to_dict("records"):
        shown = rows[row["SKU"]]
        assert (shown["Units returned"], shown["Units sold"]) == (row["Units returned"], row["Units sold"])
    # the covered days of the last 30: 29 (today has no units sold yet) x 20 BLND a day
    assert rows[BLND]["Units sold"] == 29 * 20 and rows[BLND]["95% range"].endswith("%")
    assert rows["LAMP-9"]["Note"] == "too few sales (< 30)"
    assert "Units sold synced for" in texts(at) and "No units sold yet for " + ui.BETA_NAME in texts(at)
    assert "too few sales" in texts(at) and "Wilson" in texts(at)


def test_spikes_are_judged_on_the_rate_with_the_rule_on_the_page_and_on_counts_at_a_click(store):
    at = open_app(PAGE)
    assert at.button_group(key="reasons_spike_basis").value == "Rate"
    assert "Judged on the return rate" in texts(at) and "twice as much" in texts(at)
    assert f"{BLND} × {DEF[1]}" in texts(at)  # the planted problem: its rate, too, is 5x its usual
    assert "sold in 7 days" in texts(at) and "its usual rate" in texts(at)
    at.button_group(key="reasons_spike_basis").set_value("Count").run()
    assert not at.exception, at.exception
    assert "Judged on the return rate" not in texts(at) and "1 spike(s)" in texts(at)


def test_a_view_without_units_sold_says_so_and_judges_spikes_on_counts(store):
    at = open_app(PAGE, account=BETA_LABEL)
    assert not at.exception, at.exception
    assert "No units sold synced for this view yet" in texts(at)
    assert at.button_group(key="reasons_spike_basis").options == ["Count"]


def test_a_rate_opens_its_returns_in_the_grid(store):
    at = open_app(PAGE)
    at.selectbox(key="reasons_rate_open").set_value(BLND).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Returns" and at.query_params["sku"] == BLND


def test_one_products_skus_side_by_side(store):
    at = open_app(PAGE)
    box = at.selectbox(key="reasons_rate_product")
    assert "Blender 200" in box.options
    box.set_value("Blender 200").run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "Units sold" in d.value.columns)
    assert list(table["SKU"]) == [BLND]


def test_every_rate_view_renders(store):
    at = open_app(PAGE)
    for value in ("Product", "Reason", "SKU"):
        at.button_group(key="reasons_rate_by").set_value(value).run()
        assert not at.exception, (value, at.exception)
        table = next(d.value for d in at.dataframe if "Units sold" in d.value.columns)
        assert value in table.columns
