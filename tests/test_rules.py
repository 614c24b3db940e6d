"""One place per rule: the Python rule and its generated SQL twin agree on every case.

Closed cases, the deadline state and "may the seller decide now" are each defined once in
`returns_core.domain`; the grid, the queue, the sidebar's counts and the detail page read them.
Here each twin pair runs over every combination that matters, in DuckDB and in Python.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import duckdb
import pytest

from returns_core import domain

NOW = datetime(2026, 11, 2, 12, 0, 0)
STATUSES = (*domain.STATUSES, None, "Someday New")
# around both bounds of the deadline states, and none at all
DUE_OFFSETS = (None, timedelta(days=-3), timedelta(seconds=-1), timedelta(0), timedelta(seconds=1),
               timedelta(hours=domain.DUE_SOON_HOURS) - timedelta(seconds=1), timedelta(hours=domain.DUE_SOON_HOURS),
               timedelta(days=3))
RETURN_TYPES = ("REFUND", "RETURN_AND_REFUND", "REPLACEMENT", "EXCHANGE", None)
MARKETPLACE_STATUSES = (*domain.MARKETPLACE_STATUSES, "BRAND_NEW_TIKTOK_STATUS", None)
NEXT_ACTIONS = (*domain.DECISIONS_BY_NEXT_ACTION, "SELLER_RESPOND_CANCEL", "", None)


def in_sql(columns: str, rows: list[tuple], expression: str, params: list | None = None) -> list:
    """`expression` evaluated by DuckDB for each row of a table `r(columns)`, in row order."""
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE r (i INTEGER, {columns})")
        con.executemany(f"INSERT INTO r VALUES ({', '.join('?' * (len(rows[0]) + 1))})",
                        [(i, *row) for i, row in enumerate(rows)])
        return [v for (v,) in con.execute(f"SELECT {expression} FROM r ORDER BY i", params or []).fetchall()]
    finally:
        con.close()


def test_closed_cases_are_refund_rejected_and_cancelled_in_python_and_sql():
    assert {domain.REFUNDED, domain.REJECTED, domain.CANCELLED} == domain.CLOSED_STATUSES
    rows = [(s,) for s in STATUSES]
    assert in_sql("status VARCHAR", rows, domain.closed_sql("r")) == [domain.is_closed(s) for s in STATUSES]
    assert not domain.is_closed(None)  # an unmapped return is still open


def test_a_closed_case_has_no_deadline_state_whatever_its_due_by():
    past, soon = NOW - timedelta(hours=3), NOW + timedelta(hours=3)
    for status in domain.CLOSED_STATUSES:
        assert domain.deadline_state(status, past, NOW) == domain.NO_DEADLINE
        assert domain.deadline_state(status, soon, NOW) == domain.NO_DEADLINE
    assert domain.deadline_state(domain.PENDING, past, NOW) == domain.OVERDUE
    assert domain.deadline_state(None, soon, NOW) == domain.DUE_SOON  # unmapped: open


@pytest.mark.parametrize("state", [domain.OVERDUE, domain.DUE_SOON])
def test_the_deadline_rule_and_its_sql_twin_agree(state):
    rows = [(status, None if offset is None else NOW + offset)
            for status, offset in itertools.product(STATUSES, DUE_OFFSETS)]
    condition, params = domain.deadline_sql(state, "r", NOW)
    in_duckdb = in_sql("status VARCHAR, due_by TIMESTAMP", rows, f"coalesce({condition}, FALSE)", params)
    assert in_duckdb == [domain.deadline_state(status, due_by, NOW) == state for status, due_by in rows]
    assert any(in_duckdb)


def test_the_deadline_sql_twin_has_no_condition_for_no_deadline():
    with pytest.raises(ValueError, match="No SQL for the deadline state"):
        domain.deadline_sql(domain.NO_DEADLINE, "r", NOW)


def test_may_the_seller_decide_and_its_sql_twin_agree():
    rows = list(itertools.product(RETURN_TYPES, MARKETPLACE_STATUSES, NEXT_ACTIONS))
    in_duckdb = in_sql("return_type VARCHAR, marketplace_status VARCHAR, next_action VARCHAR", rows,
                       domain.can_decide_sql("r"))
    assert in_duckdb == [domain.can_decide(*row) for row in rows]
    assert any(in_duckdb) and not all(in_duckdb)


def test_the_seller_may_decide_exactly_when_tiktok_offers_decisions():
    rows = itertools.product(RETURN_TYPES, MARKETPLACE_STATUSES, NEXT_ACTIONS)
    for row in rows:
        approve, reject = domain.seller_decisions(*row)
        assert domain.can_decide(*row) == bool(approve or reject), row
    # the fixture returns the grid once offered a decision on (tests/ui_fixtures.py R2, R4): TikTok waits for none
    assert not domain.can_decide("RETURN_AND_REFUND", "RETURN_OR_REFUND_REQUEST_SUCCESS", None)
    assert not domain.can_decide("REPLACEMENT", "AWAITING_BUYER_SHIP", None)
    assert domain.can_decide("REFUND", "RETURN_OR_REFUND_REQUEST_PENDING", None)
