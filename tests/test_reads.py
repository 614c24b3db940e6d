"""The read side of returns (store.returns and review): money stays Decimal, and the grid, the
queue, the sidebar's counts and the decision panel read the one rule each (domain).

On the small, fully known store of tests/ui_fixtures.py.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from returns_core import domain, review
from returns_core.filters import ReturnFilters
from returns_core.store import returns
from returns_core.store.db import Database, utcnow
from tests import ui_fixtures as ui
from tests.ui_fixtures import ALPHA, BETA


@pytest.fixture
def seeded(db) -> Database:
    ui.seed_store(db)
    return db


def set_due_by(db: Database, return_id: str, due_by) -> None:
    """Give a stored return another Due By (a closed case keeps the one from its last wait)."""
    with db.writer() as con:
        con.execute("UPDATE returns SET due_by = ? WHERE return_id = ?", [due_by, return_id])


# --- money stays Decimal ------------------------------------------------------------------------


def test_the_grid_page_keeps_refund_money_decimal(seeded):
    page = returns.grid_page(seeded, ReturnFilters()).set_index("Marketplace Return ID")
    money = page["Refund Total"].dropna()
    assert len(money) == 7  # R4 has none
    assert all(isinstance(v, Decimal) for v in money)
    assert page.loc["R6", "Refund Total"] == Decimal("7.50")
    assert sum(money) == Decimal("85.50")


def test_the_review_queue_keeps_refund_money_decimal(seeded):
    page = review.queue_page(seeded, review.queue_filters()).set_index("Marketplace Return ID")
    assert list(page.index) == ["R2", "R6"]  # the Accepted ones, oldest first
    assert all(isinstance(v, Decimal) for v in page["Refund Total"])
    assert (page.loc["R2", "Refund Total"], page.loc["R6", "Refund Total"]) == (Decimal("20.00"), Decimal("7.50"))


def test_line_items_and_refund_summary_keep_money_decimal(seeded):
    items = returns.return_line_items(seeded, BETA, "R6")
    assert items["Refund"].tolist() == [Decimal("7.50")]
    summary = returns.refund_summary(seeded, ReturnFilters()).set_index("Currency")
    assert summary.loc["EUR", "Requested"] == Decimal("12.50")


# --- the deadline of a closed case -----------------------------------------------------------------


def test_a_closed_return_past_its_due_by_is_not_overdue_in_counts_filters_or_the_queue(seeded):
    now = utcnow()
    set_due_by(seeded, "R5", now - timedelta(hours=3))  # Rejected
    set_due_by(seeded, "R7", now + timedelta(hours=3))  # Cancelled
    assert returns.deadline_counts(seeded) == (2, 1)  # R1 and R6 due soon, R4 overdue: as before
    overdue = returns.grid_page(seeded, ReturnFilters(overdue=True))
    assert list(overdue["Marketplace Return ID"]) == ["R4"]
    due_soon = returns.grid_page(seeded, ReturnFilters(due_soon=True))
    assert sorted(due_soon["Marketplace Return ID"]) == ["R1", "R6"]
    closed = ReturnFilters(statuses=(domain.REJECTED, domain.CANCELLED))
    assert set(review.queue_page(seeded, closed, now=now)["Deadline"]) == {domain.NO_DEADLINE}
    counts = returns.queue_counts(seeded, closed, now=now)
    assert (counts.total, counts.overdue, counts.due_soon) == (2, 0, 0)
    rejected = returns.find_return(seeded, "R5", ALPHA)
    assert domain.deadline_state(rejected["status"], rejected["due_by"], now) == domain.NO_DEADLINE


def test_every_reader_of_the_deadline_agrees_row_by_row(seeded):
    now = utcnow()
    set_due_by(seeded, "R5", now - timedelta(hours=3))
    page = returns.grid_page(seeded, ReturnFilters(), limit=500)
    in_python = {rid: domain.deadline_state(s, d, now) for rid, s, d in
                 zip(page["Marketplace Return ID"], page["Status"], page["Due By"], strict=True)}
    for state, flag in ((domain.OVERDUE, "overdue"), (domain.DUE_SOON, "due_soon")):
        in_sql = set(returns.grid_page(seeded, ReturnFilters(**{flag: True}))["Marketplace Return ID"])
        assert in_sql == {rid for rid, s in in_python.items() if s == state}, state


# --- may the seller decide --------------------------------------------------------------------------


def test_the_grids_decide_column_agrees_with_the_decisions_offered(seeded):
    page = returns.grid_page(seeded, ReturnFilters())
    for rid, shop, can in zip(page["Marketplace Return ID"], page["Account ID"], page[returns.CAN_DECIDE],
                              strict=True):
        stored = returns.find_return(seeded, rid, shop)
        approve, reject = domain.seller_decisions(stored["return_type"], stored["marketplace_status"],
                                                  stored["next_action"])
        assert bool(can) == bool(approve or reject), rid
    decidable = dict(zip(page["Marketplace Return ID"], page[returns.CAN_DECIDE], strict=True))
    # R2 (Accepted, refund pending) and R4 (waiting for the buyer's parcel) have a Due By, but TikTok waits
    # for no decision from the seller; R1 is a pending refund request
    assert (decidable["R1"], decidable["R2"], decidable["R4"]) == (True, False, False)
