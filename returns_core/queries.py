"""The one query builder for the returns grid, its counts, and the export.

Filters become a parameterised WHERE clause; paging, sorting and counting run in DuckDB, so
no page ever pulls the whole table into pandas or the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from returns_core import domain
from returns_core.store.db import Database, utcnow

MAX_SEARCH_LENGTH = 200
MAX_PAGE_SIZE = 500

_COLUMN_BY_NAME = dict(domain.GRID_COLUMNS)
SORTABLE = tuple(_COLUMN_BY_NAME)


class FilterError(ValueError):
    """A filter value a user typed that cannot be applied (shown as one line)."""


@dataclass(frozen=True)
class ReturnFilters:
    """What the user narrowed the returns to. Empty tuples mean "any"."""

    shop_ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    marketplace_statuses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # TikTok's reason text, as shown in the Reason column
    reason_codes: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()  # seller SKU or SKU id of any line item
    created_from: date | None = None  # inclusive, UTC day
    created_to: date | None = None  # inclusive, UTC day
    updated_from: date | None = None
    updated_to: date | None = None
    due_soon: bool = False  # a seller deadline within the next 24 h (not yet passed)
    overdue: bool = False  # a seller deadline already passed while still open
    flagged: bool = False  # mismatch or unmapped status
    arbitration: bool = False  # arbitration_status present
    review_outcomes: tuple[str, ...] = ()  # "" stands for "not signed off yet"
    search: str = ""  # return ID, order ID, SKU or tracking number

    def __post_init__(self) -> None:
        if len(self.search) > MAX_SEARCH_LENGTH:
            raise FilterError(f"Search text is too long ({len(self.search)} characters; at most {MAX_SEARCH_LENGTH}).")
        for start, end, label in (
            (self.created_from, self.created_to, "Created"),
            (self.updated_from, self.updated_to, "Updated"),
        ):
            if start and end and start > end:
                raise FilterError(f"{label} date range is backwards: {start} is after {end}.")

    def with_(self, **changes) -> ReturnFilters:
        return replace(self, **changes)

    def is_empty(self) -> bool:
        return all(not getattr(self, f.name) for f in fields(self))


def where_clause(f: ReturnFilters, alias: str = "r", now: datetime | None = None) -> tuple[str, list]:
    """SQL condition (without WHERE) and its parameters for the filters, over `returns AS alias`."""
    now = now or utcnow()
    parts: list[str] = []
    params: list = []

    def any_of(column: str, values: tuple) -> None:
        if values:
            parts.append(f"{alias}.{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

    any_of("shop_id", f.shop_ids)
    any_of("type", f.types)
    any_of("status", f.statuses)
    any_of("marketplace_status", f.marketplace_statuses)
    any_of("reason_text", f.reasons)
    any_of("reason_code", f.reason_codes)
    for column, start, end in (
        ("created_at", f.created_from, f.created_to),
        ("updated_at", f.updated_from, f.updated_to),
    ):
        if start:
            parts.append(f"{alias}.{column} >= ?")
            params.append(datetime.combine(start, datetime.min.time()))
        if end:
            parts.append(f"{alias}.{column} < ?")
            params.append(datetime.combine(end + timedelta(days=1), datetime.min.time()))
    if f.due_soon:
        parts.append(f"{alias}.due_by >= ? AND {alias}.due_by < ?")
        params += [now, now + timedelta(hours=domain.DUE_SOON_HOURS)]
    if f.overdue:
        parts.append(f"{alias}.due_by < ?")
        params.append(now)
    if f.flagged:
        parts.append(f"({alias}.mismatch OR {alias}.unmapped)")
    if f.arbitration:
        parts.append(f"{alias}.arbitration_status IS NOT NULL")
    if f.review_outcomes:
        named = [o for o in f.review_outcomes if o]
        cond = []
        if named:
            cond.append(f"{alias}.review_outcome IN ({', '.join('?' * len(named))})")
            params.extend(named)
        if "" in f.review_outcomes:
            cond.append(f"{alias}.review_outcome IS NULL")
        parts.append("(" + " OR ".join(cond) + ")")
    if f.skus:
        parts.append(
            "EXISTS (SELECT 1 FROM return_line_items li WHERE li.shop_id = "
            f"{alias}.shop_id AND li.return_id = {alias}.return_id AND "
            f"(li.seller_sku IN ({', '.join('?' * len(f.skus))}) OR li.sku_id IN ({', '.join('?' * len(f.skus))})))"
        )
        params += list(f.skus) * 2
    term = f.search.strip()
    if term:
        # IDs match exactly or by prefix; SKUs and tracking numbers by substring. contains()
        # and starts_with() take the text as a value, so quotes and % need no escaping.
        parts.append(
            f"({alias}.return_id = ? OR {alias}.order_id = ? OR starts_with({alias}.return_id, ?) "
            f"OR starts_with({alias}.order_id, ?) OR contains(lower({alias}.seller_skus), lower(?)) "
            f"OR contains(lower({alias}.tracking_number), lower(?)))"
        )
        params += [term] * 6
    return (" AND ".join(parts) or "TRUE"), params


def _select_list(alias: str = "r") -> str:
    return ", ".join(f'{alias}.{col} AS "{name}"' for name, col in domain.GRID_COLUMNS)


def _order_by(sort_by: str, descending: bool, alias: str = "r") -> str:
    if sort_by not in _COLUMN_BY_NAME:
        raise FilterError(f"Cannot sort by {sort_by!r}; choose one of: {', '.join(SORTABLE)}.")
    direction = "DESC" if descending else "ASC"
    # the key columns break ties so that paging is stable
    return f"{alias}.{_COLUMN_BY_NAME[sort_by]} {direction} NULLS LAST, {alias}.shop_id, {alias}.return_id"


def grid_page(db: Database, filters: ReturnFilters, *, sort_by: str = "Created At", descending: bool = True,
              limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """One page of the grid, with the grid's column names, in SQL order."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise FilterError(f"Page size must be between 1 and {MAX_PAGE_SIZE}.")
    if offset < 0:
        raise FilterError("Page offset cannot be negative.")
    where, params = where_clause(filters)
    sql = (
        f"SELECT {_select_list()} FROM returns r WHERE {where} "
        f"ORDER BY {_order_by(sort_by, descending)} LIMIT ? OFFSET ?"
    )
    with db.reader() as con:
        return con.execute(sql, params + [limit, offset]).df()


def count_returns(db: Database, filters: ReturnFilters) -> int:
    where, params = where_clause(filters)
    with db.reader() as con:
        return con.execute(f"SELECT count(*) FROM returns r WHERE {where}", params).fetchone()[0]


def status_counts(db: Database, filters: ReturnFilters) -> dict[str, int]:
    """Returns per Status under the other filters (the status filter itself is ignored), "Unmapped" for NULL."""
    where, params = where_clause(filters.with_(statuses=()))
    with db.reader() as con:
        rows = con.execute(
            f"SELECT coalesce(r.status, 'Unmapped'), count(*) FROM returns r WHERE {where} GROUP BY 1", params
        ).fetchall()
    return dict(rows)


def export_select(filters: ReturnFilters, *, sort_by: str = "Created At", descending: bool = True) -> tuple[str, list]:
    """The SELECT behind an export: exactly the filtered rows, the grid's columns and names.

    Times come out as ISO 8601 UTC text so every format (CSV, Excel, Parquet) reads the same.
    """
    where, params = where_clause(filters)
    cols = []
    for name, col in domain.GRID_COLUMNS:
        if col in ("created_at", "updated_at", "due_by"):
            cols.append(f"strftime(r.{col}, '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\"")
        elif col in ("refund_total",):
            cols.append(f"CAST(r.{col} AS VARCHAR) AS \"{name}\"")
        else:
            cols.append(f'r.{col} AS "{name}"')
    sql = f"SELECT {', '.join(cols)} FROM returns r WHERE {where} ORDER BY {_order_by(sort_by, descending)}"
    return sql, params


EXPORT_FORMATS = (".csv", ".xlsx", ".parquet")
EXCEL_MAX_ROWS = 1_048_575  # one row of Excel's limit is the header


def export_returns(db: Database, filters: ReturnFilters, out: str | Path, *, sort_by: str = "Created At",
                   descending: bool = True) -> int:
    """Write exactly the filtered returns to CSV, Excel or Parquet (by suffix). Returns the row count."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise FilterError(f"Cannot export to {out.name}: the file must end in .csv, .xlsx or .parquet.")
    if not out.parent.exists():
        raise FilterError(f"Cannot export to {out}: the folder {out.parent} does not exist.")
    sql, params = export_select(filters, sort_by=sort_by, descending=descending)
    tmp = out.with_name(out.name + ".partial")
    with db.reader() as con:
        n = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
        if suffix == ".xlsx":
            if n > EXCEL_MAX_ROWS:
                raise FilterError(f"{n:,} rows do not fit in one Excel sheet; narrow the filters or export CSV/Parquet.")
            _write_xlsx(con, sql, params, tmp)
        else:
            fmt = "FORMAT CSV, HEADER" if suffix == ".csv" else "FORMAT PARQUET"
            # COPY streams from DuckDB to the file without going through pandas
            con.execute(f"COPY ({sql}) TO '{_sql_path(tmp)}' ({fmt})", params)
    # a half-written file never takes the real name
    tmp.replace(out)
    return n


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _write_xlsx(con, sql: str, params: list, path: Path, chunk: int = 10_000) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Returns")
    ws.append([name for name, _ in domain.GRID_COLUMNS])
    result = con.execute(sql, params)
    while rows := result.fetchmany(chunk):
        for row in rows:
            ws.append(list(row))
    wb.save(path)
