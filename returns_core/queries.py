"""The one query builder for the returns grid, its counts, and the export.

Filters become a parameterised WHERE clause; paging, sorting and counting run in DuckDB, so
no page ever pulls the whole table into pandas or the browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from returns_core import domain
from returns_core.store.db import Database, exact_frame, utcnow

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
        if end and end < date.max:  # the last day there is bounds nothing (and has no day after it)
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
        # any of the return's own line items (returns.lines), by seller SKU or TikTok's SKU id
        parts.append(f"list_bool_or(list_transform({alias}.lines, lambda li: li.seller_sku IN "
                     f"({', '.join('?' * len(f.skus))}) OR li.sku_id IN ({', '.join('?' * len(f.skus))})))")
        params += list(f.skus) * 2
    term = f.search.strip()
    if term:
        # SKUs and tracking numbers match by substring, any case. ILIKE is DuckDB's fastest way, but
        # only while the term holds no pattern characters (its ESCAPE form is slower than this
        # fallback); contains() and starts_with() take the text as a plain value.
        if any(ch in term for ch in "%_\\"):
            matches = [f"contains(lower({alias}.seller_skus), ?)", f"contains(lower({alias}.tracking_number), ?)"]
            params += [term.lower()] * 2
        else:
            matches = [f"{alias}.seller_skus ILIKE ?", f"{alias}.tracking_number ILIKE ?"]
            params += [f"%{term}%"] * 2
        if any(ch.isdigit() for ch in term):
            # TikTok's IDs are decimal strings: a term without a digit cannot be one or start one,
            # and skipping the two ID columns then halves what a text search reads
            matches += [f"{alias}.return_id = ?", f"{alias}.order_id = ?", f"starts_with({alias}.return_id, ?)",
                        f"starts_with({alias}.order_id, ?)"]
            params += [term] * 4
        parts.append("(" + " OR ".join(matches) + ")")
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


def total_from_status_counts(counts: dict[str, int], filters: ReturnFilters) -> int:
    """The filtered count, read off `status_counts` (which ignores only the status filter): no second scan."""
    if filters.statuses:
        return sum(counts.get(status, 0) for status in filters.statuses)
    return sum(counts.values())


def export_select(filters: ReturnFilters, *, sort_by: str = "Created At", descending: bool = True) -> tuple[str, list]:
    """The SELECT behind an export: exactly the filtered rows, the grid's columns and names.

    Times come out as ISO 8601 UTC text so every format (CSV, Excel, Parquet) reads the same.
    """
    where, params = where_clause(filters)
    cols = []
    for name, col in domain.GRID_COLUMNS:
        if col in ("created_at", "updated_at", "due_by"):
            cols.append(f"strftime(r.{col}, '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\"")
        elif col == "refund_total":
            # money as text, exact: two decimals, more only where TikTok sent more (never a float)
            cols.append(f"CASE WHEN r.{col} = round(r.{col}, 2) THEN CAST(CAST(r.{col} AS DECIMAL(18,2)) AS VARCHAR) "
                        f"ELSE rtrim(CAST(r.{col} AS VARCHAR), '0') END AS \"{name}\"")
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
                raise FilterError(
                    f"{n:,} rows do not fit in one Excel sheet; narrow the filters or export CSV/Parquet.")
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


# --- filters in the URL ---------------------------------------------------------------------
# The grid and refunds pages bind their filter widgets to these query parameters, so a link
# reproduces the view; other pages (reason charts) link to the grid with `filters_to_query`.

QUERY_LIST_KEYS: dict[str, str] = {
    "type": "types",
    "status": "statuses",
    "mstatus": "marketplace_statuses",
    "reason": "reasons",
}
QUERY_FLAG_KEYS: dict[str, str] = {
    "due": "due_soon",
    "overdue": "overdue",
    "flagged": "flagged",
    "arbitration": "arbitration",
}
MAX_SKUS = 50


def parse_skus(text: str) -> tuple[str, ...]:
    """SKUs typed as one text, separated by commas or spaces."""
    skus = tuple(dict.fromkeys(s for s in text.replace(",", " ").split() if s))
    if len(skus) > MAX_SKUS:
        raise FilterError(f"Too many SKUs ({len(skus)}); at most {MAX_SKUS}.")
    return skus


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(f"{text!r} is not a date; use YYYY-MM-DD.") from None


def filters_to_query(f: ReturnFilters) -> dict[str, str | list[str]]:
    """The filters as query parameters (the keys the grid's widgets are bound to)."""
    query: dict[str, str | list[str]] = {}
    for key, name in QUERY_LIST_KEYS.items():
        if getattr(f, name):
            query[key] = list(getattr(f, name))
    for key, name in QUERY_FLAG_KEYS.items():
        if getattr(f, name):
            query[key] = "true"
    if f.skus:
        query["sku"] = " ".join(f.skus)
    if f.created_from or f.created_to:
        start = f.created_from or f.created_to
        end = f.created_to or f.created_from
        query["created"] = [start.isoformat(), end.isoformat()]
    if f.search:
        query["q"] = f.search
    return query


def filters_from_query(query: Mapping[str, str | list[str]]) -> ReturnFilters:
    """Query parameters back into filters; FilterError when a value cannot be read."""

    def values(key: str) -> tuple[str, ...]:
        raw = query.get(key)
        if raw is None:
            return ()
        items = [raw] if isinstance(raw, str) else list(raw)
        return tuple(v for v in items if v != "")

    changes: dict = {name: values(key) for key, name in QUERY_LIST_KEYS.items()}
    for key, name in QUERY_FLAG_KEYS.items():
        flag = values(key)
        changes[name] = bool(flag) and flag[-1].lower() == "true"
    changes["skus"] = parse_skus(" ".join(values("sku")))
    days = [_parse_day(v) for v in values("created")]
    if len(days) > 2:
        raise FilterError("The created-date range takes at most two dates.")
    if days:
        changes["created_from"], changes["created_to"] = days[0], days[-1]
    search = values("q")
    changes["search"] = search[-1] if search else ""
    return ReturnFilters(**changes)


# --- small lookups for the filter widgets and the sidebar ----------------------------------


def reason_options(db: Database, shop_ids: tuple[str, ...] = ()) -> list[str]:
    """The reason texts present in the store, most frequent first."""
    where, params = where_clause(ReturnFilters(shop_ids=shop_ids))
    with db.reader() as con:
        rows = con.execute(
            f"SELECT r.reason_text FROM returns r WHERE {where} AND r.reason_text IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 500",
            params,
        ).fetchall()
    return [row[0] for row in rows]


def marketplace_status_options(db: Database) -> list[str]:
    """TikTok's known return statuses, then any new ones the store holds (shown verbatim)."""
    with db.reader() as con:
        rows = con.execute(
            "SELECT DISTINCT marketplace_status FROM returns WHERE unmapped AND marketplace_status IS NOT NULL "
            "ORDER BY 1 LIMIT 200"
        ).fetchall()
    return list(domain.MARKETPLACE_STATUSES) + [row[0] for row in rows if row[0] not in domain.STATUS_MAP]


def data_stamp(db: Database) -> tuple:
    """Changes whenever synced or edited data changes, also from another process (a cron sync)."""
    with db.reader() as con:
        return con.execute(
            "SELECT (SELECT max(id) FROM sync_runs), (SELECT max(coalesce(finished_at, started_at)) FROM sync_runs), "
            "(SELECT max(id) FROM history), (SELECT max(updated_at) FROM accounts), "
            "(SELECT max(fetched_at) FROM return_records)"
        ).fetchone()


def last_successful_syncs(db: Database) -> dict[str, datetime]:
    """Per account (shop_id), when its last successful sync finished."""
    with db.reader() as con:
        rows = con.execute(
            "SELECT shop_id, max(finished_at) FROM sync_runs WHERE state = 'ok' GROUP BY shop_id"
        ).fetchall()
    return dict(rows)


def deadline_counts(db: Database, shop_ids: tuple[str, ...] = ()) -> tuple[int, int]:
    """(due within the next 24 hours, overdue): returns whose seller deadline is near or passed."""
    return (count_returns(db, ReturnFilters(shop_ids=shop_ids, due_soon=True)),
            count_returns(db, ReturnFilters(shop_ids=shop_ids, overdue=True)))


# --- one return ----------------------------------------------------------------------------


def find_return(db: Database, return_id: str, shop_id: str | None = None) -> dict | None:
    """Every stored field of one return (with its raw payload), or None when it is not stored."""
    sql = "SELECT * FROM returns WHERE return_id = ?"
    params: list = [return_id]
    if shop_id:
        sql += " AND shop_id = ?"
        params.append(shop_id)
    with db.reader() as con:
        cur = con.execute(sql + " ORDER BY shop_id LIMIT 1", params)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([d[0] for d in cur.description], row, strict=True))


def return_line_items(db: Database, shop_id: str, return_id: str) -> pd.DataFrame:
    with db.reader() as con:
        return exact_frame(
            con,
            'SELECT seller_sku AS "SKU", sku_id AS "SKU ID", product_name AS "Product", sku_name AS "Variant", '
            'product_image_url AS "Image", refund_total AS "Refund", refund_currency AS "Currency", '
            'return_line_item_id AS "Line Item ID" FROM return_line_items WHERE shop_id = ? AND return_id = ? '
            "ORDER BY return_line_item_id",
            [shop_id, return_id],
        )


def return_records(db: Database, shop_id: str, return_id: str) -> pd.DataFrame:
    """TikTok's event records as last fetched, in TikTok's order."""
    with db.reader() as con:
        return con.execute(
            'SELECT created_at AS "Time", event AS "Event", role AS "By", description AS "Description", '
            'reason_text AS "Reason", note AS "Note", fetched_at AS "Fetched At" FROM return_records '
            "WHERE shop_id = ? AND return_id = ? ORDER BY seq",
            [shop_id, return_id],
        ).df()


# --- refunds -------------------------------------------------------------------------------

REFUND_TYPES: tuple[str, ...] = (domain.REFUND, domain.RETURN_AND_REFUND)


def refund_filters(filters: ReturnFilters) -> ReturnFilters:
    """Only refund requests (Refund, Return & Refund), within any Type the user picked."""
    types = tuple(t for t in filters.types if t in REFUND_TYPES) if filters.types else REFUND_TYPES
    # a pick with no refund type means "none": keep an impossible type rather than "any"
    return filters.with_(types=types or ("-",))


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
    with db.reader() as con:
        return exact_frame(con, sql, [accepted, completed, accepted, completed] + params)


# --- sync runs -----------------------------------------------------------------------------


def sync_runs_page(db: Database, shop_ids: tuple[str, ...] = (), *, limit: int = 50, offset: int = 0) -> pd.DataFrame:
    """Sync runs, newest first, one page of them."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise FilterError(f"Page size must be between 1 and {MAX_PAGE_SIZE}.")
    where, params = _shop_condition(shop_ids, "s")
    with db.reader() as con:
        return con.execute(
            'SELECT s.started_at AS "Started", coalesce(a.name, s.shop_id) AS "Account", s.shop_id AS "Account ID", '
            's.trigger AS "Trigger", s.full_sync AS "Full", s.state AS "Result", s.duration_s AS "Duration (s)", '
            's.pages AS "Pages", s.new_count AS "New", s.updated_count AS "Updated", '
            's.unchanged_count AS "Unchanged", s.error AS "Error" '
            f"FROM sync_runs s LEFT JOIN accounts a ON a.shop_id = s.shop_id WHERE {where} "
            "ORDER BY s.started_at DESC, s.id DESC LIMIT ? OFFSET ?",
            params + [limit, offset],
        ).df()


def count_sync_runs(db: Database, shop_ids: tuple[str, ...] = ()) -> int:
    where, params = _shop_condition(shop_ids, "s")
    with db.reader() as con:
        return con.execute(f"SELECT count(*) FROM sync_runs s WHERE {where}", params).fetchone()[0]


def _shop_condition(shop_ids: tuple[str, ...], alias: str) -> tuple[str, list]:
    if not shop_ids:
        return "TRUE", []
    return f"{alias}.shop_id IN ({', '.join('?' * len(shop_ids))})", list(shop_ids)


def last_sync_attempts(db: Database) -> dict[str, datetime]:
    """Per account (shop_id), when its last sync started, whatever the outcome."""
    with db.reader() as con:
        return dict(con.execute("SELECT shop_id, max(started_at) FROM sync_runs GROUP BY shop_id").fetchall())


# --- settings ------------------------------------------------------------------------------


def get_setting(db: Database, key: str, default: str | None = None) -> str | None:
    with db.reader() as con:
        row = con.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_setting(db: Database, key: str, value: str) -> None:
    with db.writer() as con:
        con.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [key, value, utcnow()],
        )
