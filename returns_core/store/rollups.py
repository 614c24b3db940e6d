"""Daily pre-aggregates of the returns: what Reason Analytics reads when its filters allow.

A month of a busy agency holds hundreds of thousands of returns, and every chart of Reason Analytics
aggregated all of them again (2 s and a gigabyte of memory at 10M returns). These tables hold the
same counts and sums per shop and created day (UTC), once (the grid's counts read them too):

- `daily_returns`: per day, Type, Status, reason and currency: returns, those with a refund amount,
  and its sum (KPIs, currencies, reasons, groups, responsibility, weekly trend, spike reasons);
- `daily_skus`: per day, Type, Status, reason, SKU, product name and currency: returns that hold the
  SKU (each once, however many of its line items), its units and their refund (top SKUs, SKU × reason,
  spikes);
- `daily_products`: the same per product name and the SKUs a return holds of it (top products).

Each row's `created_at` is the day's midnight, so the grid's own WHERE (`store.returns.where_clause`)
selects from them exactly the returns it selects from `returns`, for the filters they keep (`covers`).
They change in the transaction that changes the returns: a write keeps its returns as they were
(`before_write`), then adds them as they are and takes away what they were (`after_write`), so the
rows never lag behind and no day is counted again from scratch. A return's line items share its
order's currency, so a SKU's refund is summed in the currency of its line items.
"""

from __future__ import annotations

from dataclasses import fields

import duckdb

from returns_core.filters import ReturnFilters
from returns_core.store.schema import ALL_RETURNS, ROLLUP_ROW_COLUMNS, ROLLUPS

# The filters the daily rows can answer: every other one needs the returns themselves.
_KEPT = {"shop_ids", "kinds", "types", "statuses", "reasons", "reason_codes", "created_from", "created_to"}

_BEFORE, _ROWS = "_rollup_before", "_rollup_rows"

# What a row's sums become when a contribution adds to them (a refund total stays NULL while no return of
# the row has a refund amount, as sum() over them would say).
_ADD = {
    "daily_returns": ("with_refund = d.with_refund + x.with_refund, refund_total = CASE WHEN "
                      "d.with_refund + x.with_refund > 0 THEN coalesce(d.refund_total, 0) + "
                      "coalesce(x.refund_total, 0) END"),
    "daily_skus": "units = d.units + x.units, refund_total = d.refund_total + x.refund_total",
    "daily_products": "refund_total = d.refund_total + x.refund_total",
}


def covers(filters: ReturnFilters) -> bool:
    """True when the daily rows answer for these filters exactly (only account, kind, Type, Status, reason and
    created date)."""
    blank = ReturnFilters()
    return all(getattr(filters, f.name) == getattr(blank, f.name) for f in fields(ReturnFilters)
               if f.name not in _KEPT)


def before_write(con: duckdb.DuckDBPyConnection, returns_sql: str, params: list | tuple = ()) -> None:
    """Keep the returns `returns_sql` selects (whole rows of `returns`) as they are before a write, with their
    TikTok status and payload (what the sync compares with), for `after_write`."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_BEFORE} AS SELECT {ROLLUP_ROW_COLUMNS}, r.marketplace_status, "
                f"r.payload FROM ({returns_sql}) r", list(params))


def kept_before(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(shop_id, return_id, marketplace_status, status, payload) of the returns `before_write` kept."""
    return con.execute(f"SELECT shop_id, return_id, marketplace_status, status, payload FROM {_BEFORE}").fetchall()


def after_write(con: duckdb.DuckDBPyConnection, returns_sql: str, params: list | tuple = ()) -> None:
    """Bring the daily rows up to date with the write: add the returns `returns_sql` selects as they are now,
    take away what `before_write` (called first, in the same transaction) kept of them (nothing for a return
    that is new)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {_ROWS} AS SELECT {ROLLUP_ROW_COLUMNS}, 1 AS sign "
                f"FROM ({returns_sql}) r UNION ALL SELECT {ROLLUP_ROW_COLUMNS}, -1 FROM {_BEFORE} r", list(params))
    try:
        for table, keys, contribution in ROLLUPS:
            same_key = " AND ".join(f"d.{key} IS NOT DISTINCT FROM x.{key}" for key in keys)
            # a row whose last return went elsewhere goes; a contribution of nothing (a return that
            # changed, but not in this table's keys) adds nothing
            con.execute(f"""
                MERGE INTO {table} d USING ({contribution.format(rows=_ROWS)}) x ON {same_key}
                WHEN MATCHED AND d.returns + x.returns = 0 THEN DELETE
                WHEN MATCHED THEN UPDATE SET returns = d.returns + x.returns, {_ADD[table]}
                WHEN NOT MATCHED AND x.returns <> 0 THEN INSERT BY NAME""")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_ROWS}; DROP TABLE IF EXISTS {_BEFORE}")


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Work every daily row out again from all the returns (after rows were written around the write path)."""
    for table, _, contribution in ROLLUPS:
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} BY NAME {contribution.format(rows=ALL_RETURNS)}")
