"""Reads of the returns, their line items and TikTok's records: the grid, its counts and export,
the review queue and the reconciliation list.

The one query builder: filters become a parameterised WHERE clause (`where_clause`); paging,
sorting and counting run in DuckDB, so no page ever pulls the whole table into pandas or the
browser. Frames come through `Database.frame`, which keeps money as Decimal. Deadlines, closed
cases and "may the seller decide" are the SQL twins of the rules in `domain`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd

from returns_core import domain
from returns_core.filters import FilterError, ReturnFilters, check_page, refund_filters
from returns_core.spreadsheet import safe_cell_sql
from returns_core.store import rollups, rules
from returns_core.store.db import Database, StoreError, io_reason, make_private, one_return_sql, utcnow

_COLUMN_BY_NAME = dict(domain.GRID_COLUMNS)

CAN_DECIDE = "Can Decide"  # after the grid's columns: domain.can_decide, computed in SQL
RESYNC_LIMIT = 50  # "re-sync all listed" stops here: each re-sync is one call to TikTok

EXPORT_FORMATS = (".csv", ".xlsx", ".parquet")
EXCEL_MAX_ROWS = 1_048_575  # one row of Excel's limit is the header


# --- the filters as SQL ----------------------------------------------------------------------


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
    any_of("kind", f.kinds)
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
        if end and end < date.max:  # the last day there is bounds nothing (and has no day after it)
            parts.append(f"{alias}.{column} < ?")
            params.append(datetime.combine(end + timedelta(days=1), datetime.min.time()))
    for wanted, state in ((f.due_soon, domain.DUE_SOON), (f.overdue, domain.OVERDUE)):
        if wanted:
            condition, values = domain.deadline_sql(state, alias, now)
            parts.append(condition)
            params += values
    if f.flagged:
        parts.append(f"({alias}.mismatch OR {alias}.unmapped)")
    if f.arbitration:
        parts.append(f"{alias}.arbitration_status IS NOT NULL")
    if f.waiting:
        parts.append(domain.stored_can_decide_sql(alias))
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
        # any of the return's own line items (returns.lines), by seller SKU or TikTok's SKU id
        parts.append(f"list_bool_or(list_transform({alias}.lines, lambda li: li.seller_sku IN "
                     f"({', '.join('?' * len(f.skus))}) OR li.sku_id IN ({', '.join('?' * len(f.skus))})))")
        params += list(f.skus) * 2
    term = f.search.strip()
    if term:
        parts.append(_search_condition(term, alias, params))
    if f.backtest is not None:
        parts.append(rules.backtest_in_sql(alias))
        params.append(f.backtest)
    return (" AND ".join(parts) or "TRUE"), params


def _search_condition(term: str, alias: str, params: list) -> str:
    """The search box as SQL (its parameters appended to `params`): IDs, SKUs, tracking numbers."""
    # SKUs and tracking numbers match by substring, any case. ILIKE is DuckDB's fastest way, but
    # only while the term holds no pattern characters (its ESCAPE form is slower than this
    # fallback); contains() and starts_with() take the text as a plain value.
    columns = [f"{alias}.seller_skus"]
    # TikTok's IDs are decimal strings and every carrier's tracking number holds digits: a term
    # without a digit cannot be one. Skipping those columns then leaves only the SKUs to read: the
    # tracking number is unique per return, so reading it costs more than all the rest (0.08 s of
    # 0.1 s at 10M returns), while the SKU text repeats and DuckDB matches it once per distinct value.
    has_digit = any(ch.isdigit() for ch in term)
    if has_digit:
        columns.append(f"{alias}.tracking_number")
    if any(ch in term for ch in "%_\\"):
        matches = [f"contains(lower({column}), ?)" for column in columns]
        params += [term.lower()] * len(columns)
    else:
        matches = [f"{column} ILIKE ?" for column in columns]
        params += [f"%{term}%"] * len(columns)
    if has_digit:
        matches += [f"{alias}.return_id = ?", f"{alias}.order_id = ?", f"starts_with({alias}.return_id, ?)",
                    f"starts_with({alias}.order_id, ?)"]
        params += [term] * 4
    return "(" + " OR ".join(matches) + ")"


def _select_list(alias: str = "r") -> str:
    """The grid's columns under the grid's names (domain.GRID_COLUMNS)."""
    return ", ".join(f'{alias}.{col} AS "{name}"' for name, col in domain.GRID_COLUMNS)


def _order_by(sort_by: str, descending: bool, alias: str = "r") -> str:
    """ORDER BY for a grid column the user picked (any other name is refused), ties broken by the keys."""
    if sort_by not in _COLUMN_BY_NAME:
        raise FilterError(f"Cannot sort by {sort_by!r}; choose one of: {', '.join(_COLUMN_BY_NAME)}.")
    direction = "DESC" if descending else "ASC"
    # the key columns break ties so that paging is stable
    return f"{alias}.{_COLUMN_BY_NAME[sort_by]} {direction} NULLS LAST, {alias}.shop_id, {alias}.return_id"


# --- the grid --------------------------------------------------------------------------------


def grid_page(db: Database, filters: ReturnFilters, *, sort_by: str = "Created At", descending: bool = True,
              limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """One page of the grid, with the grid's column names in SQL order, then CAN_DECIDE.

    Refund Total stays Decimal. CAN_DECIDE is `domain.can_decide` for the row (the Actions column).
    """
    check_page(limit, offset)
    where, params = where_clause(filters)
    sql = (
        f'SELECT {_select_list()}, {domain.stored_can_decide_sql("r")} AS "{CAN_DECIDE}" FROM returns r '
        f"WHERE {where} ORDER BY {_order_by(sort_by, descending)} LIMIT ? OFFSET ?"
    )
    return db.frame(sql, params + [limit, offset])


def _counted(filters: ReturnFilters) -> tuple[str, str]:
    """Where to count the returns the filters select, and how: the daily pre-aggregate (store/rollups.py)
    when it answers for them, each row weighing its returns; else the returns, one each."""
    return ("daily_returns", "sum(r.returns)") if rollups.covers(filters) else ("returns", "count(*)")


def count_returns(db: Database, filters: ReturnFilters, now: datetime | None = None) -> int:
    """How many returns the filters select (deadlines as at `now`, by default the present)."""
    where, params = where_clause(filters, now=now)
    table, count = _counted(filters)
    return int(db.value(f"SELECT coalesce({count}, 0) FROM {table} r WHERE {where}", params))


def status_counts(db: Database, filters: ReturnFilters) -> dict[str, int]:
    """Returns per Status under the other filters (the status filter itself is ignored), "Unmapped" for NULL."""
    return status_totals(status_kind_counts(db, filters))


def status_kind_counts(db: Database, filters: ReturnFilters) -> dict[tuple[str, str], int]:
    """Rows per (Status, kind) under the other filters (the status filter itself is ignored), "Unmapped" for a
    NULL Status: one scan gives the Status counts, the filtered total and its split into returns and
    cancellations (filters.kind_totals)."""
    where, params = where_clause(filters.with_(statuses=()))
    table, count = _counted(filters.with_(statuses=()))
    rows = db.rows(f"SELECT coalesce(r.status, 'Unmapped'), r.kind, {count} FROM {table} r WHERE {where} "
                   "GROUP BY 1, 2", params)
    return {(status, kind): int(n) for status, kind, n in rows}


def status_totals(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    """Per Status, every kind together, from status_kind_counts."""
    totals: dict[str, int] = {}
    for (status, _), n in counts.items():
        totals[status] = totals.get(status, 0) + n
    return totals


def deadline_counts(db: Database, shop_ids: tuple[str, ...] = (), types: tuple[str, ...] = (),
                    now: datetime | None = None) -> tuple[int, int]:
    """(due soon, overdue) at `now`: open returns (of these Types: any when none) whose seller deadline is near
    or passed (domain.deadline_state). `types=(domain.CANCELLATION,)` counts the cancellations' own deadlines."""
    return (count_returns(db, ReturnFilters(shop_ids=shop_ids, types=types, due_soon=True), now),
            count_returns(db, ReturnFilters(shop_ids=shop_ids, types=types, overdue=True), now))


# --- export ----------------------------------------------------------------------------------

# The kinds of the grid's columns in an export: times, money and yes/no flags keep their types where
# the format has them; every other column is text, which spreadsheets get neutralised (spreadsheet.py).
_TIME_COLUMNS = ("created_at", "updated_at", "due_by")
_MONEY_COLUMNS = ("refund_total",)
_FLAG_COLUMNS = ("mismatch", "unmapped")
EXCEL_MONEY_FORMAT = "#,##0.00##"  # two decimals, up to four where TikTok sent more; the value stays exact
EXCEL_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
EXCEL_TIME_HEADER = "{} (UTC)"  # Excel has no time zones: the header says what the datetimes are


def export_header(suffix: str) -> list[str]:
    """The export's column names: the grid's, with "(UTC)" on the times in Excel (ISO text elsewhere ends in Z)."""
    return [EXCEL_TIME_HEADER.format(name) if suffix == ".xlsx" and col in _TIME_COLUMNS else name
            for name, col in domain.GRID_COLUMNS]


def export_select(filters: ReturnFilters, *, sort_by: str = "Created At", descending: bool = True,
                  suffix: str = ".csv") -> tuple[str, list]:
    """The SELECT behind an export: exactly the filtered rows, the grid's columns in the grid's order.

    - CSV: times as ISO 8601 UTC text, money as exact decimal text, text neutralised for spreadsheets.
    - Excel: times as UTC datetimes, money as exact decimals, text neutralised.
    - Parquet: times as ISO 8601 UTC text, money as exact decimals, text raw (a data format, not a sheet).
    """
    where, params = where_clause(filters)
    cols = []
    for name, col in domain.GRID_COLUMNS:
        expr = f"r.{col}"
        if col in _TIME_COLUMNS:
            if suffix != ".xlsx":
                expr = f"strftime({expr}, '%Y-%m-%dT%H:%M:%SZ')"
        elif col in _MONEY_COLUMNS:
            if suffix == ".csv":
                # two decimals, more only where TikTok sent more (never through a float)
                expr = (f"CASE WHEN {expr} = round({expr}, 2) THEN CAST(CAST({expr} AS DECIMAL(18,2)) AS VARCHAR) "
                        f"ELSE rtrim(CAST({expr} AS VARCHAR), '0') END")
        elif col not in _FLAG_COLUMNS and suffix != ".parquet":
            expr = safe_cell_sql(expr)
        cols.append(f'{expr} AS "{name}"')
    sql = f"SELECT {', '.join(cols)} FROM returns r WHERE {where} ORDER BY {_order_by(sort_by, descending)}"
    return sql, params


def export_returns(db: Database, filters: ReturnFilters, out: str | Path, *, sort_by: str = "Created At",
                   descending: bool = True) -> int:
    """Write exactly the filtered returns to CSV, Excel or Parquet (by suffix). Returns the row count.

    The app's download buttons and the CLI's `export --out` both come here. The file is written in a
    fresh private folder beside `out` and renamed onto `out` (owner-only, 0600) only when complete: an
    existing `out` is replaced whole or not at all, and no other file of the user's is ever touched.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise FilterError(f"Cannot export to {out.name}: the file must end in .csv, .xlsx or .parquet.")
    if not out.parent.is_dir():
        raise FilterError(f"Cannot export to {out}: the folder {out.parent} does not exist.")
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise FilterError(f"Cannot export to {out}: it is a {'link' if out.is_symlink() else 'folder'}, "
                          "not a file; give the path of a new or existing file.")
    sql, params = export_select(filters, sort_by=sort_by, descending=descending, suffix=suffix)
    with db.reader() as con:
        # one read transaction (ended when the connection closes): the count and the rows agree
        con.execute("BEGIN TRANSACTION")
        n = con.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
        if suffix == ".xlsx" and n > EXCEL_MAX_ROWS:
            raise FilterError(f"{n:,} rows do not fit in one Excel sheet; narrow the filters or export CSV/Parquet.")
        try:
            _write_export(con, sql, params, suffix, out, n)
        except (OSError, duckdb.IOException) as exc:
            reason = io_reason(exc)  # the operating system's words, also from inside DuckDB's message
            raise StoreError(f"Cannot write the export to {out}: {reason}. Nothing was written; "
                             "check the folder's space and permissions, or choose another folder.") from None
        con.execute("COMMIT")
    return n


def _write_export(con, sql: str, params: list, suffix: str, out: Path, n: int) -> None:
    """Write the rows under a temporary name beside `out`, then rename it onto `out`."""
    # a private folder with a name nobody else has (mkdtemp: 0700): DuckDB and openpyxl create their
    # file with the umask's mode, and the rows are customer data, unreadable to others even half-written
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        tmp = work / f"export{suffix}"
        if suffix == ".xlsx":
            _write_xlsx(con, sql, params, tmp, n)
        else:
            fmt = "FORMAT CSV, HEADER" if suffix == ".csv" else "FORMAT PARQUET"
            # COPY streams from DuckDB to the file without going through pandas
            con.execute(f"COPY ({sql}) TO '{_sql_path(tmp)}' ({fmt})", params)
        make_private(tmp)  # 0600
        os.replace(tmp, out)  # a half-written file never takes the real name
    finally:
        shutil.rmtree(work, ignore_errors=True)  # our own folder only


def _sql_path(path: Path) -> str:
    """A file path as the inside of a SQL string literal (COPY takes no parameter for it)."""
    return str(path).replace("'", "''")


def _write_xlsx(con, sql: str, params: list, path: Path, n: int, chunk: int = 10_000) -> None:
    """Stream the export's rows into one Excel sheet an accountant can work with.

    Money is numeric (the exact decimal, with the Currency column beside it), times are datetimes
    in UTC, the header row is frozen and has an autofilter over all rows.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    header = export_header(".xlsx")
    kinds = [col for _, col in domain.GRID_COLUMNS]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Returns")
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{n + 1}"
    for i, (name, kind) in enumerate(zip(header, kinds, strict=True), start=1):
        ws.column_dimensions[get_column_letter(i)].width = 40 if kind == "reason_text" else max(12, len(name) + 4)
    ws.append(header)

    def amount(value: Decimal) -> WriteOnlyCell:
        # a number cell holding the decimal's own digits: openpyxl would write a Decimal through a float
        # ("%.16g": 0.07 becomes 0.07000000000000001), so the text goes in and the cell is marked numeric
        c = WriteOnlyCell(ws, format(value, "f"))
        c.data_type = "n"
        c.number_format = EXCEL_MONEY_FORMAT
        return c

    def moment(value: datetime) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value)
        c.number_format = EXCEL_TIME_FORMAT
        return c

    result = con.execute(sql, params)
    while rows := result.fetchmany(chunk):
        for row in rows:
            ws.append([v if v is None else amount(v) if kind in _MONEY_COLUMNS else moment(v) if kind in _TIME_COLUMNS
                       else v for v, kind in zip(row, kinds, strict=True)])
    wb.save(path)


# --- small lookups for the filter widgets ------------------------------------------------------


def reason_options(db: Database, shop_ids: tuple[str, ...] = ()) -> list[str]:
    """The reason texts present in the store, most frequent first."""
    filters = ReturnFilters(shop_ids=shop_ids)
    where, params = where_clause(filters)
    table, count = _counted(filters)
    rows = db.rows(
        f"SELECT r.reason_text FROM {table} r WHERE {where} AND r.reason_text IS NOT NULL "
        f"GROUP BY 1 ORDER BY {count} DESC, 1 LIMIT 500",
        params,
    )
    return [row[0] for row in rows]


def marketplace_status_options(db: Database) -> list[str]:
    """TikTok's known return and cancellation statuses, then any new ones the store holds (shown verbatim)."""
    rows = db.rows(
        "SELECT DISTINCT marketplace_status FROM returns WHERE unmapped AND marketplace_status IS NOT NULL "
        "ORDER BY 1 LIMIT 200"
    )
    return list(domain.MARKETPLACE_STATUSES) + [row[0] for row in rows if row[0] not in domain.MARKETPLACE_STATUSES]


# --- one return ----------------------------------------------------------------------------


def find_return(db: Database, return_id: str, shop_id: str | None = None) -> dict | None:
    """Every stored field of one return (with its raw payload), or None when it is not stored."""
    if shop_id:
        return db.record(one_return_sql("returns", "*", "shop_id"), [return_id, shop_id])
    # the same index lookup (store/db.one_return_sql), any shop: the first, as a link without one names it
    return db.record("WITH found AS MATERIALIZED (SELECT * FROM returns WHERE return_id = ?) "
                     "SELECT * FROM found ORDER BY shop_id LIMIT 1", [return_id])


def return_line_items(db: Database, shop_id: str, return_id: str) -> pd.DataFrame:
    """One return's line items: SKU, product, image and refund (Decimal) per item."""
    return db.frame(one_return_sql(
        "return_line_items",
        'seller_sku AS "SKU", sku_id AS "SKU ID", product_name AS "Product", sku_name AS "Variant", '
        'product_image_url AS "Image", refund_total AS "Refund", refund_currency AS "Currency", '
        'return_line_item_id AS "Line Item ID"', "return_line_item_id"), [return_id, shop_id])


def return_records(db: Database, shop_id: str, return_id: str) -> pd.DataFrame:
    """TikTok's event records as last fetched, in TikTok's order."""
    return db.frame(
        'SELECT created_at AS "Time", event AS "Event", role AS "By", description AS "Description", '
        'reason_text AS "Reason", note AS "Note", fetched_at AS "Fetched At" FROM return_records '
        "WHERE shop_id = ? AND return_id = ? ORDER BY seq",
        [shop_id, return_id],
    )


# --- refunds -------------------------------------------------------------------------------


def refund_summary(db: Database, filters: ReturnFilters) -> pd.DataFrame:
    """Per currency: requests, and the amounts requested (all), accepted and completed (Refund), with breakdown."""
    where, params = where_clause(refund_filters(filters))
    accepted, completed = domain.ACCEPTED, domain.REFUNDED
    sql = f"""
        SELECT coalesce(r.refund_currency, '-') AS "Currency",
               count(*) AS "Requests",
               coalesce(sum(r.refund_total), 0) AS "Requested",
               coalesce(sum(r.refund_total) FILTER (WHERE r.status = ?), 0) AS "Accepted",
               coalesce(sum(r.refund_total) FILTER (WHERE r.status = ?), 0) AS "Completed",
               count(*) FILTER (WHERE r.status = ?) AS "Accepted Requests",
               count(*) FILTER (WHERE r.status = ?) AS "Completed Requests",
               coalesce(sum(r.refund_subtotal), 0) AS "Subtotal",
               coalesce(sum(r.refund_shipping_fee), 0) AS "Shipping",
               coalesce(sum(r.refund_tax), 0) AS "Tax"
        FROM returns r WHERE {where}
        GROUP BY 1 ORDER BY "Requested" DESC, 1
    """
    return db.frame(sql, [accepted, completed, accepted, completed] + params)


# --- the review queue ----------------------------------------------------------------------------


def queue_rows(db: Database, filters: ReturnFilters, *, limit: int = 50, offset: int = 0,
               now: datetime | None = None) -> pd.DataFrame:
    """One page of the review queue's returns, oldest first, as stored (money Decimal) plus age_seconds."""
    check_page(limit, offset)
    now = now or utcnow()
    where, params = where_clause(filters, now=now)
    sql = (
        "SELECT r.return_id, r.shop_id, r.type, r.reason_text, r.refund_total, r.refund_currency, r.created_at, "
        "date_diff('second', r.created_at, ?) AS age_seconds, r.status, r.due_by, r.review_outcome, "
        f"r.reviewed_by, r.reviewed_at FROM returns r WHERE {where} "
        # oldest first; the keys break ties so that paging is stable
        "ORDER BY r.created_at ASC NULLS LAST, r.shop_id, r.return_id LIMIT ? OFFSET ?"
    )
    return db.frame(sql, [now, *params, limit, offset])


@dataclass(frozen=True)
class QueueCounts:
    """Headline numbers above the queue, under the same filters."""

    total: int
    not_signed_off: int
    overdue: int
    due_soon: int


def queue_counts(db: Database, filters: ReturnFilters, now: datetime | None = None) -> QueueCounts:
    """How many queued returns, how many still need a sign-off, and how many deadlines are close."""
    now = now or utcnow()
    where, params = where_clause(filters, now=now)
    overdue, overdue_params = domain.deadline_sql(domain.OVERDUE, "r", now)
    due_soon, due_soon_params = domain.deadline_sql(domain.DUE_SOON, "r", now)
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE r.review_outcome IS NULL), count(*) FILTER (WHERE {overdue}), "
        f"count(*) FILTER (WHERE {due_soon}) FROM returns r WHERE {where}"
    )
    total, open_, n_overdue, n_due_soon = db.row(sql, [*overdue_params, *due_soon_params, *params])
    return QueueCounts(total, open_, n_overdue, n_due_soon)


# --- reconciliation ---------------------------------------------------------------------------


def reconciliation_rows(db: Database, filters: ReturnFilters, *, limit: int = 25, offset: int = 0) -> pd.DataFrame:
    """One page of flagged returns as stored: unmapped first, then the least recently synced."""
    check_page(limit, offset)
    where, params = where_clause(filters)
    sql = (
        "SELECT r.return_id, r.shop_id, r.type, r.status, r.marketplace_status, r.unmapped, r.updated_at, "
        f"r.last_synced_at, r.kind FROM returns r WHERE {where} "
        "ORDER BY r.unmapped DESC, r.last_synced_at ASC, r.shop_id, r.return_id LIMIT ? OFFSET ?"
    )
    return db.frame(sql, [*params, limit, offset])


@dataclass(frozen=True)
class FlagCounts:
    """Mismatches and unmapped statuses under the filters."""

    mismatch: int
    unmapped: int

    @property
    def total(self) -> int:
        """Every flagged return (each counted once)."""
        return self.mismatch + self.unmapped


def flag_counts(db: Database, filters: ReturnFilters) -> FlagCounts:
    """How many returns are flagged, by kind (an unmapped return counts once, as unmapped)."""
    where, params = where_clause(filters.with_(flagged=True))
    sql = (
        "SELECT count(*) FILTER (WHERE r.mismatch AND NOT r.unmapped), count(*) FILTER (WHERE r.unmapped) "
        f"FROM returns r WHERE {where}"
    )
    mismatch, unmapped = db.row(sql, params)
    return FlagCounts(mismatch, unmapped)


def flagged_keys(db: Database, filters: ReturnFilters, limit: int = RESYNC_LIMIT) -> list[tuple[str, str]]:
    """(shop_id, return_id) of up to `limit` flagged returns, in the reconciliation list's order."""
    where, params = where_clause(filters.with_(flagged=True))
    sql = (f"SELECT r.shop_id, r.return_id FROM returns r WHERE {where} "
           "ORDER BY r.unmapped DESC, r.last_synced_at ASC, r.shop_id, r.return_id LIMIT ?")
    return [(s, r) for s, r in db.rows(sql, [*params, max(0, min(limit, RESYNC_LIMIT))])]
