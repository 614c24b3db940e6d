"""AppTest: cancellations in the app, through the real app.py: their own Type in the grid and its filter,
their own deadlines in the sidebar and in Waiting for you, their own status mapping beside the returns'."""

from __future__ import annotations

from datetime import timedelta

import pytest

from returns_core import domain
from returns_core.store.db import Database, utcnow
from returns_core.store.return_writes import upsert_page
from tests import ui_fixtures as ui
from tests.apptest import grid, open_app, sidebar_text, texts
from tests.ui_fixtures import ALPHA

WAITING_SOON, WAITING_LATE, DONE = "5035000000000000011", "5035000000000000012", "5035000000000000013"


def cancellation(cancel_id: str, status: str, due_in: timedelta | None) -> dict:
    now = int(utcnow().timestamp())
    obj = {"cancel_id": cancel_id, "order_id": f"58{cancel_id[-6:]}", "cancel_type": "BUYER_CANCEL",
           "cancel_status": status, "role": "BUYER", "cancel_reason": "ecom_order_to_ship_canceled_reason_better_price",
           "cancel_reason_text": "Found a better price elsewhere", "create_time": now - 3600, "update_time": now - 60,
           "refund_amount": {"currency": "USD", "refund_total": "19.99", "refund_subtotal": "19.99"},
           "cancel_line_items": [{"cancel_line_item_id": f"L{cancel_id}", "sku_id": "1", "seller_sku": "MUG-1",
                                  "product_name": "Mug",
                                  "refund_amount": {"currency": "USD", "refund_total": "19.99"}}]}
    if due_in is not None:
        obj["seller_next_action_response"] = [{"action": "SELLER_RESPOND_CANCEL",
                                               "deadline": now + int(due_in.total_seconds())}]
    return obj


@pytest.fixture
def seeded(app_db) -> Database:
    ui.seed_store(app_db)
    upsert_page(app_db, ALPHA, [cancellation(WAITING_SOON, "CANCELLATION_REQUEST_PENDING", timedelta(hours=2)),
                                cancellation(WAITING_LATE, "CANCELLATION_REQUEST_PENDING", timedelta(hours=-1)),
                                cancellation(DONE, "CANCELLATION_REQUEST_CANCELLED", None)],
                synced_at=utcnow(), kind=domain.CANCELLATION_KIND)
    return app_db


def test_the_type_filter_offers_cancellations_and_keeps_only_them(seeded):
    at = open_app(type="Cancellation")
    assert "Cancellation" in at.multiselect(key="type").options
    shown = grid(at)
    assert sorted(shown["Marketplace Return ID"]) == sorted([WAITING_SOON, WAITING_LATE, DONE])
    assert set(shown["Type"]) == {"Cancellation"}
    statuses = dict(zip(shown["Marketplace Return ID"], shown["Status"], strict=True))
    assert statuses == {WAITING_SOON: "Requested", WAITING_LATE: "Requested", DONE: "Cancelled"}


def test_the_sidebar_counts_the_cancellations_deadlines_apart_and_links_to_them(seeded):
    at = open_app()
    assert "cancellations**: 1 due, 1 overdue" in sidebar_text(at)
    links = {link.label: link for link in at.sidebar.get("page_link")}
    assert "Due cancellations" in links and "Overdue cancellations" in links
    assert at.sidebar.selectbox(key="sidebar_auto_sync").value == "Off"  # the rest of the sidebar follows
    shown = open_app(show="cancellations_overdue")
    assert list(grid(shown)["Marketplace Return ID"]) == [WAITING_LATE]


def test_waiting_for_you_lists_the_cancellations_that_wait_for_an_answer(seeded):
    at = open_app()
    waiting = set(grid(at, "waiting_grid")["Marketplace Return ID"])
    assert {WAITING_SOON, WAITING_LATE} <= waiting and DONE not in waiting
    assert "**2** are buyers asking to cancel before shipment" in texts(at)


def test_the_cancellation_status_mapping_is_shown_beside_the_returns_mapping(seeded):
    at = open_app("app_pages/reconciliation.py")
    mapping = next(d.value for d in at.dataframe if "TikTok cancel_status" in d.value.columns)
    assert any("TikTok return_status" in d.value.columns for d in at.dataframe)
    assert dict(zip(mapping["TikTok cancel_status"], mapping["Status"], strict=True)) == \
        domain.CANCELLATION_STATUS_MAP


def filter_summary(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith(":material/filter_alt:"))


def test_the_grids_count_names_returns_and_cancellations_each(seeded):
    at = open_app()
    shown = grid(at)
    cancellations = int((shown["Type"] == "Cancellation").sum())
    returns = len(shown) - cancellations
    assert (returns, cancellations) == (8, 3)  # the store's eight returns and three cancellations, one page
    both = f"**{returns}** returns and **{cancellations}** cancellations"
    assert filter_summary(at) == f":material/filter_alt: {both} · no filters"
    assert f"Showing 1–11 of {both}" in texts(at)

    only = open_app(type="Cancellation")
    assert filter_summary(only) == ":material/filter_alt: **3** cancellations · Type: Cancellation"
    assert "Showing 1–3 of **3** cancellations" in texts(only)
    # the status filter splits the kinds too (read off the same status counts: no count of its own)
    requested = open_app(status="Requested")
    split = grid(requested)["Type"].eq("Cancellation").value_counts().to_dict()
    assert split == {True: 2, False: 1}
    assert filter_summary(requested).startswith(":material/filter_alt: **1** return and **2** cancellations · ")
    refunds = open_app(type="Refund")
    assert filter_summary(refunds) == ":material/filter_alt: **4** returns · Type: Refund"
    none = open_app(type="Cancellation", status="Pending")
    assert filter_summary(none).startswith(":material/filter_alt: **0** cancellations · ")
