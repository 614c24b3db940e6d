"""AppTest: the Reason Analytics page, for all accounts and for one, and its drill-down to the grid.

The store holds the spiky history of tests/analytics_fixtures.py ending yesterday (the last complete
day) in Alpha's shop, with one planted spike (BLND-200-BLK, "defective"), and a few calm
returns in Beta's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from returns_core.filters import ReturnFilters
from returns_core.store.db import utcnow
from returns_core.store.returns import count_returns
from tests import ui_fixtures as ui
from tests.analytics_fixtures import BLND, DEF, MUG, SIZE, insert, spiky_rows
from tests.apptest import metric, open_app, texts

PAGE = "app_pages/reasons.py"
BETA_LABEL = f"{ui.BETA_NAME} ({ui.BETA})"
ALPHA_LABEL = f"{ui.ALPHA_NAME} ({ui.ALPHA})"


def today():
    return utcnow().date()


def yesterday():
    return today() - timedelta(days=1)


def last_30_days(**changes) -> ReturnFilters:
    """The page's default period."""
    return ReturnFilters(created_from=today() - timedelta(days=29), created_to=today(), **changes)


@pytest.fixture
def store(app_db):
    ui.add_account(app_db, ui.ALPHA, ui.ALPHA_NAME)
    ui.add_account(app_db, ui.BETA, ui.BETA_NAME)
    insert(app_db, spiky_rows(as_of=yesterday(), shop=ui.ALPHA))
    noon = datetime.combine(today(), datetime.min.time()) + timedelta(hours=12)
    insert(app_db, [(f"B{i}", ui.BETA, "Refund", "Refund", SIZE if i % 2 else DEF, noon - timedelta(days=3 * i),
                     noon - timedelta(days=3 * i - 1), "EUR", "4.20", [(MUG, "4.20")]) for i in range(6)])
    return app_db


def test_page_renders_for_all_accounts_with_kpis_and_the_planted_spike(store):
    at = open_app(PAGE)
    assert at.title[0].value == "Reason Analytics"
    assert metric(at, "Returns") == f"{count_returns(store, last_30_days()):,}"
    assert "1 spike(s)" in texts(at)
    assert f"{BLND} × {DEF[1]}" in texts(at)
    assert len(at.get("plotly_chart")) >= 6
    assert len(at.get("download_button")) >= 6  # every chart's data as CSV


def test_page_renders_for_one_account(store):
    at = open_app(PAGE, account=BETA_LABEL)
    assert metric(at, "Returns") == "6"
    assert metric(at, "Refund requested (EUR)") == "25.20 EUR"
    assert "No spikes" in texts(at)


def test_spike_select_box_opens_the_grid_on_exactly_the_spike_rows(store):
    at = open_app(PAGE)
    box = at.selectbox(key="reasons_spikes_top_open")
    label = next(o for o in box.options if o.startswith(f"{BLND} × "))
    box.set_value(label).run()
    assert not at.exception, at.exception
    window = [(yesterday() - timedelta(days=6)).isoformat(), yesterday().isoformat()]
    assert at.query_params["sku"] == BLND
    assert at.query_params["reason"] == DEF[1]
    assert at.query_params["created"] == window
    assert at.query_params["account"] == ALPHA_LABEL  # the Account View moved to the spike's account
    assert at.title[0].value == "Returns"
    assert "of **10** returns" in texts(at)


def test_drill_down_keeps_the_account_in_view(store):
    at = open_app(PAGE, account=BETA_LABEL)
    at.selectbox(key="reasons_top_skus_open").set_value(MUG).run()
    assert not at.exception, at.exception
    assert at.query_params["account"] == BETA_LABEL
    assert at.query_params["sku"] == MUG
    assert "of **6** returns" in texts(at)



@pytest.mark.slow
def test_the_demo_shops_planted_spike_is_on_the_page(app_db):
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.demo import DEMO_RETURNS, DEMO_SEED
    from returns_core.sync import sync_accounts
    from returns_core.tiktok import sandbox as planted
    from returns_core.tiktok.client import TokenSet

    world = planted.Sandbox(seed=DEMO_SEED, shops=1, returns=DEMO_RETURNS)
    tokens = TokenSet.from_data(world.issue_tokens())
    accounts = add_accounts_with_tokens(app_db, "Demo", planted.SANDBOX_APP_KEY, planted.SANDBOX_APP_SECRET,
                                        tokens.access_token, tokens.refresh_token, api_base="https://sandbox.invalid",
                                        auth_base="https://sandbox.invalid", is_sandbox=True,
                                        transport=world.transport(), tokens=tokens)
    assert all(r.ok for r in sync_accounts(app_db, accounts, transport=world.transport()))
    at = open_app(PAGE)
    warning = next(w.value for w in at.warning if "spike" in w.value)
    assert f"{planted.PLANTED_SPIKE_SKU} × {planted.PLANTED_SPIKE_REASON_TEXT}" in warning


def test_every_view_switch_renders(store):
    at = open_app(PAGE)
    for key, value in [("reasons_pareto_by", "Group"), ("reasons_pareto_measure", "Refund money (USD)"),
                       ("reasons_sku_rank", "Refund money (USD)"), ("reasons_trend_by", "Reason"),
                       ("reasons_trend_basis", "Updated"), ("reasons_trend_measure", "Refund money (USD)"),
                       ("reasons_matrix_by", "Group"), ("reasons_product_rank", "Refund money (USD)"),
                       ("reasons_resp_measure", "Refund money (USD)")]:
        at.button_group(key=key).set_value(value).run()
        assert not at.exception, (key, at.exception)
    at.selectbox(key="reasons_period").set_value("Custom range").run()
    at.multiselect(key="reasons_statuses").set_value(["Refund"]).run()
    assert not at.exception, at.exception
    assert metric(at, "Returns") == f"{count_returns(store, last_30_days(statuses=('Refund',))):,}"
