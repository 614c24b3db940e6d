"""Daily pre-aggregates of the returns: what Reason Analytics reads when its filters allow.

A month of a busy agency holds hundreds of thousands of returns, and every chart of Reason Analytics
aggregated all of them again (2 s and a gigabyte of memory at 10M returns). These tables hold the
same counts and sums per shop and created day (UTC), once (the grid's counts read them too):

- `daily_returns`: per day, Type, Status, reason and currency: returns, those with a refund amount,
  and its sum (KPIs, currencies, reasons, groups, responsibility, weekly trend, spike reasons);
- `daily_skus`: per day, Type, Status, reason, SKU and currency: returns that hold the SKU (each
  once, however many of its line items), its units and their refund (top SKUs, SKU × reason, spikes);
- `daily_products`: the same per product name, with the SKUs seen (top products).

Each row's `created_at` is the day's midnight, so the grid's own WHERE (`store.returns.where_clause`)
selects from them exactly the returns it selects from `returns`, for the filters they keep (`covers`).
They are written in the transaction that changes the returns (`refresh`, for the shops and days
touched), so they never lag behind. A return's line items share its order's currency, so a SKU's
refund is summed in the currency of its line items.
"""

from __future__ import annotations

from dataclasses import fields

import duckdb

from returns_core.filters import ReturnFilters
from returns_core.store.schema import ROLLUP_FILLS

# The filters the daily rows can answer: every other one needs the returns themselves.
_KEPT = {"shop_ids", "kinds", "types", "statuses", "reasons", "reason_codes", "created_from", "created_to"}

_TOUCHED = "_rollup_touched"


def covers(filters: ReturnFilters) -> bool:
    """True when the daily rows answer for these filters exactly (only account, kind, Type, Status, reason and
    created date)."""
    blank = ReturnFilters()
    return all(getattr(filters, f.name) == getattr(blank, f.name) for f in fields(ReturnFilters)
               if f.name not in _KEPT)


def refresh(con: duckdb.DuckDBPyConnection, touched_sql: str, params: list | tuple = ()) -> None:
    """Work the daily rows out again for every (shop, created day) of the rows `touched_sql` selects
    (a SELECT with shop_id and created_at), inside the caller's transaction."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_TOUCHED} AS SELECT DISTINCT shop_id, "
                f"date_trunc('day', created_at) AS day FROM ({touched_sql})", list(params))
    try:
        low, high, undated = con.execute(
            f"SELECT min(day), max(day), bool_or(day IS NULL) FROM {_TOUCHED}").fetchone()
        if low is None and not undated:
            return
        touched = (f"EXISTS (SELECT 1 FROM {_TOUCHED} t WHERE t.shop_id = r.shop_id "
                   "AND t.day IS NOT DISTINCT FROM date_trunc('day', r.created_at))")
        bounds: list = []
        if not undated:
            # the days' span as plain bounds: the zone maps then skip the row groups of other days
            touched += " AND r.created_at >= ? AND r.created_at < ? + INTERVAL 1 DAY"
            bounds = [low, high]
        for table, fill in ROLLUP_FILLS:
            con.execute(f"DELETE FROM {table} r WHERE EXISTS (SELECT 1 FROM {_TOUCHED} t "
                        "WHERE t.shop_id = r.shop_id AND t.day IS NOT DISTINCT FROM r.created_at)")
            con.execute(fill.format(where=touched), bounds)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_TOUCHED}")


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Work every daily row out again from all the returns (after rows were written around the write path)."""
    for table, fill in ROLLUP_FILLS:
        con.execute(f"DELETE FROM {table}")
        con.execute(fill.format(where="TRUE"))
