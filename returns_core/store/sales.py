"""Units sold per shop, SKU or product, and shop-local day: the return rate's denominator.

Written by the sync's sales step (returns_core.sales_sync) after a shop's returns, one transaction
per shop: TikTok's figures for the fetched days replace what was stored for those days (TikTok
revises its latest days), older days stay. `sales_state` records the days covered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pyarrow as pa

from returns_core.store.db import Database, utcnow
from returns_core.tiktok.client import ProductSales, SkuSales


@dataclass(frozen=True)
class SalesCoverage:
    """The shop-local days whose units sold are stored for a shop."""

    first_day: date
    last_day: date
    fetched_at: datetime


@dataclass(frozen=True)
class SalesFetch:
    """What one sales step fetched for a shop: every SKU per day, every product per day."""

    first_day: date  # the first day asked for
    last_day: date  # TikTok's latest_available_date: the last day with figures
    skus: dict[date, list[SkuSales]]
    products: dict[str, list[ProductSales]]  # product_id -> its days

    @property
    def days(self) -> int:
        return max(0, (self.last_day - self.first_day).days + 1)


_MONEY = pa.decimal128(18, 4)
_SKU_SCHEMA = pa.schema([("shop_id", pa.string()), ("sku_id", pa.string()), ("day", pa.date32()),
                         ("product_id", pa.string()), ("units_sold", pa.int32()), ("sku_orders", pa.int32()),
                         ("gmv", _MONEY), ("currency", pa.string()), ("fetched_at", pa.timestamp("us"))])
_PRODUCT_SCHEMA = pa.schema([("shop_id", pa.string()), ("product_id", pa.string()), ("day", pa.date32()),
                             ("items_sold", pa.int32()), ("orders", pa.int32()), ("gmv", _MONEY),
                             ("currency", pa.string()), ("fetched_at", pa.timestamp("us"))])


def coverage(db: Database, shop_id: str) -> SalesCoverage | None:
    """The days of units sold stored for the shop (None before its first sales step)."""
    row = db.row("SELECT first_day, last_day, fetched_at FROM sales_state WHERE shop_id = ?", [shop_id])
    return SalesCoverage(*row) if row else None


def coverages(con: duckdb.DuckDBPyConnection, shop_ids: Sequence[str]) -> dict[str, SalesCoverage]:
    """`coverage` of several shops in the caller's transaction (a sync round reads them as it opens
    the shops' runs); a shop without any is left out."""
    rows = con.execute("SELECT shop_id, first_day, last_day, fetched_at FROM sales_state "
                       "WHERE list_contains(?::VARCHAR[], shop_id)", [list(shop_ids)]).fetchall()
    return {row[0]: SalesCoverage(*row[1:]) for row in rows}


def save_fetch(db: Database, shop_id: str, fetch: SalesFetch, *, at: datetime | None = None) -> int:
    """Store one sales step's figures in one transaction; returns the SKU-day rows written."""
    now = at or utcnow()
    sku_rows = [(shop_id, s.sku_id, day, s.product_id, s.units_sold, s.sku_orders, s.gmv, s.currency, now)
                for day, skus in fetch.skus.items() for s in skus]
    product_rows = [(shop_id, product_id, p.start_date, p.items_sold, p.orders, p.gmv, p.currency, now)
                    for product_id, days in fetch.products.items() for p in days]
    with db.writer() as con:
        _upsert(con, _SKU_UPSERT, _SKU_SCHEMA, sku_rows)
        _upsert(con, _PRODUCT_UPSERT, _PRODUCT_SCHEMA, product_rows)
        con.execute(
            "INSERT INTO sales_state (shop_id, first_day, last_day, fetched_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (shop_id) DO UPDATE SET first_day = least(sales_state.first_day, excluded.first_day), "
            "last_day = greatest(sales_state.last_day, excluded.last_day), fetched_at = excluded.fetched_at",
            [shop_id, fetch.first_day, fetch.last_day, now])
    return len(sku_rows)


# TikTok's latest figures for a day replace the stored ones (it revises its latest days)
_SKU_UPSERT = (
    "INSERT INTO sku_sales BY NAME SELECT * FROM _sales_rows ON CONFLICT (shop_id, sku_id, day) DO UPDATE SET "
    "product_id = excluded.product_id, units_sold = excluded.units_sold, sku_orders = excluded.sku_orders, "
    "gmv = excluded.gmv, currency = excluded.currency, fetched_at = excluded.fetched_at")
_PRODUCT_UPSERT = (
    "INSERT INTO product_sales BY NAME SELECT * FROM _sales_rows ON CONFLICT (shop_id, product_id, day) DO UPDATE "
    "SET items_sold = excluded.items_sold, orders = excluded.orders, gmv = excluded.gmv, "
    "currency = excluded.currency, fetched_at = excluded.fetched_at")


def _upsert(con, statement: str, schema: pa.Schema, rows: list[tuple]) -> None:
    """Run an upsert of rows (in `schema`'s column order) handed to DuckDB through Arrow."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    data = pa.table([pa.array(values, field.type) for values, field in zip(columns, schema, strict=True)],
                    schema=schema)
    con.register("_sales_rows", data)
    try:
        con.execute(statement)
    finally:
        con.unregister("_sales_rows")


def units_sold(db: Database, shop_id: str, first: date, last: date) -> dict[str, int]:
    """Units sold per SKU id over the shop's days [first, last] (both included)."""
    return dict(db.rows("SELECT sku_id, CAST(sum(units_sold) AS BIGINT) FROM sku_sales "
                        "WHERE shop_id = ? AND day BETWEEN ? AND ? GROUP BY 1", [shop_id, first, last]))
