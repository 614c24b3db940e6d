"""Reason and refund analytics: every aggregate runs in DuckDB over the grid's filters.

Each query starts from `store.returns.where_clause`, so a chart and the grid rows it drills down
to are the same rows (`filters.grid_query` makes the link). Only small aggregate results come
back to Python. Money is summed as DECIMAL in SQL, fetched as `Decimal` (through
`Database.frame` / `exact_frame`, never `.df()`, which turns DECIMAL into float), and always per
currency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import duckdb
import pandas as pd

from returns_core import domain, reason_groups
from returns_core.filters import DateBasis, FilterError, ReturnFilters
from returns_core.store import rollups
from returns_core.store.db import Database, exact_frame, utcnow
from returns_core.store.returns import where_clause

NO_REASON = "(no reason given)"
NO_SKU = "(no SKU)"

GroupBy = Literal["reason", "group"]


@dataclass(frozen=True)
class Measure:
    """What a chart adds up: returns, or requested refund money in one currency (never mixed)."""

    currency: str | None = None  # None counts returns

    @property
    def column(self) -> str:
        """The name of the value column in a result."""
        return "Returns" if self.currency is None else "Refund"

    @property
    def label(self) -> str:
        """The value in words, for an axis or a legend."""
        return "Returns" if self.currency is None else f"Refund requested ({self.currency})"


RETURNS = Measure()


# --- the filtered returns, classified --------------------------------------------------------


def _returns_where(filters: ReturnFilters) -> tuple[str, list]:
    """The grid's WHERE over returns only: a buyer's cancellation before shipment is not a return (it
    has no return reason and no units come back), so it never counts in reasons, SKUs or rates."""
    return where_clause(filters.with_(kinds=(domain.RETURN_KIND,)), "r")


def _daily(filters: ReturnFilters, table: str) -> str | None:
    """The daily pre-aggregate `table` (store/rollups.py) when it answers for these filters, else None."""
    return table if rollups.covers(filters) else None


def _base(filters: ReturnFilters, measure: Measure = RETURNS, *, classify: bool = True,
          daily: str | None = None) -> tuple[str, list]:
    """`WITH` clause defining `base`: the filtered returns with reason label, group, responsibility.

    Each row weighs `returns` returns (1 for a return, `with_refund` of them with a refund amount).
    With `daily`, the rows are that daily pre-aggregate's (see `_daily`): one per day and its other
    keys, weighing the returns it sums; `refund_total` is then their sum.
    `classify=False` leaves out the group and responsibility (and the join that adds them) for
    queries that only need the reason label: less work and memory over many returns.
    """
    where, params = _returns_where(filters)
    if measure.currency is not None:
        where += " AND r.refund_currency = ? AND r.refund_total IS NOT NULL"
        params = params + [measure.currency]
    key = reason_groups.normalize_sql("code", "text")
    # classify each distinct (code, text) once, then join: the phrase rules run over a few
    # dozen reasons instead of every return. MATERIALIZED keeps it that way: otherwise the
    # optimizer moves the CASE above the join and runs it per return (50x slower at 100k)
    if daily is not None:
        rows = f"SELECT r.*, coalesce(r.reason_text, '{NO_REASON}') AS reason FROM {daily} r WHERE {where}"
    else:
        rows = f"""
            SELECT r.shop_id, r.return_id, r.type, r.status, r.reason_code, r.reason_text,
                   coalesce(r.reason_text, '{NO_REASON}') AS reason,  -- by TikTok's text, as the grid filters
                   r.created_at, r.updated_at, r.refund_currency, r.refund_total, r.lines,
                   1 AS returns, CAST(r.refund_total IS NOT NULL AS INTEGER) AS with_refund
            FROM returns r WHERE {where}"""
    sql = f"""
        WITH filtered AS ({rows}
        ),"""
    if not classify:
        return sql + """
        base AS (SELECT *, CAST(NULL AS VARCHAR) AS reason_group, CAST(NULL AS VARCHAR) AS responsibility
                 FROM filtered)
    """, params
    sql += f"""
        reason_map AS MATERIALIZED (
            SELECT code, text, {reason_groups.group_sql("reason_key")} AS reason_group,
                   {reason_groups.responsibility_sql("reason_key")} AS responsibility
            FROM (SELECT code, text, {key} AS reason_key
                  FROM (SELECT DISTINCT reason_code AS code, reason_text AS text FROM filtered))
        ),
        base AS (
            SELECT f.*, m.reason_group, m.responsibility
            FROM filtered f JOIN reason_map m
              ON f.reason_code IS NOT DISTINCT FROM m.code AND f.reason_text IS NOT DISTINCT FROM m.text
        )
    """
    return sql, params


def _value_sql(measure: Measure, alias: str = "b") -> str:
    """SQL for what a chart adds up: a count, or the refund money of one currency."""
    return _count_sql(alias) if measure.currency is None else f"coalesce(sum({alias}.refund_total), 0)"


def _count_sql(alias: str = "b", condition: str | None = None) -> str:
    """SQL counting the returns of `base`-shaped rows (each weighs `returns`), those meeting `condition`."""
    only = f" FILTER (WHERE {condition})" if condition else ""
    return f"CAST(coalesce(sum({alias}.returns){only}, 0) AS BIGINT)"


def _query(db: Database, sql: str, params: Sequence) -> pd.DataFrame:
    """Run an aggregate into a frame that keeps Decimal money."""
    return db.frame(sql, params)


# --- KPIs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpis:
    """The numbers at the top of the page."""

    returns: int
    closed: int
    median_close: timedelta | None  # created_at -> updated_at over closed returns
    by_type: pd.DataFrame  # Type, Returns, Share
    money: pd.DataFrame  # Currency, Returns, Requested, Completed (Decimal)


def kpis(db: Database, filters: ReturnFilters) -> Kpis:
    """Returns, money requested and completed per currency, share by type, median time to close."""
    base, params = _base(filters, classify=False, daily=_daily(filters, "daily_returns"))  # no reason groups
    head_sql = f"""{base}
        SELECT {_count_sql()}, {_count_sql("b", domain.closed_sql("b"))} FROM base b"""
    # updated_at is TikTok's last change; for a closed return that is when it closed. A median needs
    # every return's own time: the one figure read from the returns themselves
    returns_base, returns_params = _base(filters, classify=False)
    median_sql = f"""{returns_base}
        SELECT median(date_diff('second', b.created_at, b.updated_at)) FILTER (WHERE {domain.closed_sql("b")})
        FROM base b"""
    type_sql = f"""{base}
        SELECT coalesce(type, '(unknown)') AS "Type", {_count_sql()} AS "Returns", {_share_sql(_count_sql())} AS "Share"
        FROM base b GROUP BY 1 ORDER BY 2 DESC, 1"""
    money_sql = f"""{base}
        SELECT refund_currency AS "Currency", CAST(sum(with_refund) AS BIGINT) AS "Returns",
               sum(refund_total) AS "Requested",
               coalesce(sum(refund_total) FILTER (WHERE status = ?), 0) AS "Completed"
        FROM base WHERE refund_total IS NOT NULL AND refund_currency IS NOT NULL
        GROUP BY 1 ORDER BY 2 DESC, 1"""
    with db.reader() as con:
        total, n_closed = con.execute(head_sql, params).fetchone()
        median_s = con.execute(median_sql, returns_params).fetchone()[0] if n_closed else None
        by_type = exact_frame(con, type_sql, params)
        money = exact_frame(con, money_sql, params + [domain.REFUNDED])
    median = None if median_s is None else timedelta(seconds=float(median_s))
    return Kpis(returns=total, closed=n_closed, median_close=median, by_type=by_type, money=money)


def currencies(db: Database, filters: ReturnFilters) -> list[str]:
    """Currencies with refund money in view, the most used first."""
    where, params = _returns_where(filters)
    # each daily row weighs the returns with a refund amount it sums
    table, weight = ("daily_returns", "r.with_refund") if _daily(filters, "daily_returns") else ("returns", "1")
    rows = db.rows(
        f"SELECT r.refund_currency FROM {table} r WHERE {where} AND r.refund_currency IS NOT NULL "
        f"AND r.refund_total IS NOT NULL GROUP BY 1 ORDER BY sum({weight}) DESC, 1",
        params,
    )
    return [row[0] for row in rows]


# --- reason frequency -----------------------------------------------------------------------


def reason_frequency(db: Database, filters: ReturnFilters, measure: Measure = RETURNS) -> pd.DataFrame:
    """Per reason text, largest first: Reason, Group, Responsibility, value, Share, Cumulative Share."""
    base, params = _base(filters, measure, daily=_daily(filters, "daily_returns"))
    value = measure.column
    sql = f"""{base}
        SELECT reason AS "Reason", any_value(reason_group) AS "Group",
               any_value(responsibility) AS "Responsibility", {_value_sql(measure)} AS "{value}"
        FROM base b GROUP BY reason"""
    return _query(db, _pareto(sql, value, "Reason"), params)


def group_frequency(db: Database, filters: ReturnFilters, measure: Measure = RETURNS) -> pd.DataFrame:
    """Per reason group, largest first: Group, value, Share, Cumulative Share, Reasons (texts in it)."""
    base, params = _base(filters, measure, daily=_daily(filters, "daily_returns"))
    value = measure.column
    sql = f"""{base}
        SELECT reason_group AS "Group", {_value_sql(measure)} AS "{value}",
               list(DISTINCT reason_text ORDER BY reason_text) FILTER (WHERE reason_text IS NOT NULL) AS "Reasons"
        FROM base b GROUP BY reason_group"""
    return _query(db, _pareto(sql, value, "Group"), params)


def responsibility_split(db: Database, filters: ReturnFilters, measure: Measure = RETURNS) -> pd.DataFrame:
    """Per responsibility (Seller, Buyer, Logistics, Unknown): value, Share, Reasons."""
    base, params = _base(filters, measure, daily=_daily(filters, "daily_returns"))
    value = measure.column
    order = ", ".join(f"'{r}'" for r in reason_groups.RESPONSIBILITIES)
    sql = f"""{base}
        SELECT responsibility AS "Responsibility", {_value_sql(measure)} AS "{value}",
               {_share_sql(_value_sql(measure))} AS "Share",
               list(DISTINCT reason_text ORDER BY reason_text) FILTER (WHERE reason_text IS NOT NULL) AS "Reasons"
        FROM base b GROUP BY responsibility
        ORDER BY list_position([{order}], responsibility)"""
    return _query(db, sql, params)


def _share_sql(value: str) -> str:
    """SQL: `value` as a share of its column's total (0 when the total is 0), as DOUBLE."""
    return f"coalesce(CAST({value} / nullif(sum({value}) OVER (), 0) AS DOUBLE), 0)"


def _pareto(sql: str, value: str, key: str) -> str:
    """Order an aggregate largest first, with its share and the cumulative share a Pareto line needs."""
    order = f'ORDER BY "{value}" DESC, "{key}"'
    running = f'sum("{value}") OVER ({order} ROWS UNBOUNDED PRECEDING)'
    return f"""SELECT *, {_share_sql(f'"{value}"')} AS "Share",
               coalesce(CAST({running} / nullif(sum("{value}") OVER (), 0) AS DOUBLE), 0) AS "Cumulative Share"
        FROM ({sql}) {order}"""


# --- trend ----------------------------------------------------------------------------------


def weekly_trend(db: Database, filters: ReturnFilters, *, by: GroupBy = "reason", basis: DateBasis = "created",
                 measure: Measure = RETURNS) -> pd.DataFrame:
    """Per ISO week (Monday, UTC) and reason or group: Week, Reason|Group, value."""
    # the daily rows know the day a return was created, not the day it last changed
    daily = _daily(filters, "daily_returns") if basis == "created" else None
    base, params = _base(filters, measure, classify=by != "reason", daily=daily)
    key, name = ("reason", "Reason") if by == "reason" else ("reason_group", "Group")
    column = "created_at" if basis == "created" else "updated_at"
    sql = f"""{base}
        SELECT CAST(date_trunc('week', {column}) AS DATE) AS "Week", {key} AS "{name}",
               {_value_sql(measure)} AS "{measure.column}"
        FROM base b WHERE {column} IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2"""
    return _query(db, sql, params)


# --- products -------------------------------------------------------------------------------


def _lines(filters: ReturnFilters, measure: Measure = RETURNS, *, classify: bool = True) -> tuple[str, list]:
    """`base` plus `lines`: one row per return line item, with the SKU shown to users."""
    base, params = _base(filters, classify=classify)
    # a line item's refund is in its own currency; only that currency's lines carry money
    if measure.currency is None:
        money, line_params = "li.refund_total", []
    else:
        money, line_params = "CASE WHEN li.refund_currency = ? THEN li.refund_total END", [measure.currency]
    # the items are unnested from the filtered returns' own `lines`: no join with every line item
    sql = f"""{base},
        lines AS (
            SELECT shop_id, return_id, status, reason, reason_group, created_at,
                   coalesce(li.seller_sku, li.sku_id, '{NO_SKU}') AS sku, li.product_name,
                   {money} AS refund_total
            FROM (SELECT *, unnest(lines) AS li FROM base)
        )
    """
    return sql, params + line_params


def top_skus(db: Database, filters: ReturnFilters, *, currency: str | None = None, by_money: bool = False,
             limit: int = 15) -> pd.DataFrame:
    """Top SKUs: SKU, Product, Returns, Refund requested/completed (line items, in `currency`), Top reason."""
    return _top(db, filters, "sku", currency=currency, by_money=by_money, limit=limit)


def top_products(db: Database, filters: ReturnFilters, *, currency: str | None = None, by_money: bool = False,
                 limit: int = 15) -> pd.DataFrame:
    """Top products: Product, SKUs (list), Returns, Refund requested/completed, Top reason (and its share)."""
    return _top(db, filters, "product", currency=currency, by_money=by_money, limit=limit)


def _top(db: Database, filters: ReturnFilters, level: Literal["sku", "product"], *, currency: str | None,
         by_money: bool, limit: int) -> pd.DataFrame:
    """The top SKUs or products by returns (or by refund money in `currency`), with their leading reason."""
    if by_money and currency is None:
        raise FilterError("Ranking by refund money needs a currency.")
    daily = _daily(filters, "daily_skus" if level == "sku" else "daily_products")
    if level == "sku":
        name, detail = "SKU", 'max(p.product_name) AS "Product"'
    else:
        name, detail = "Product", 'list_sort(list_distinct(flatten(list(p.skus)))) AS "SKUs"'
    # one row per return and item first: a return counts once however many of its lines match
    # (cheaper than counting distinct keys); the daily rows are that already, each weighing its returns
    if daily is not None:
        base, params = _base(filters, classify=False, daily=daily)
        money = "CASE WHEN refund_currency = ? THEN refund_total END" if currency else "refund_total"
        item = f"coalesce(sku, '{NO_SKU}')" if level == "sku" else "product"
        products = "product_name" if level == "sku" else "NULL AS product_name, skus"
        per_return = f"""{base},
        per_return AS (
            SELECT {item} AS item, status, reason, {products}, {money} AS refund_total, returns FROM base
        )"""
        params = params + ([currency] if currency else [])
    else:
        lines, params = _lines(filters, Measure(currency) if currency else RETURNS, classify=False)
        if level == "sku":
            item, skus = "sku", ""  # the item is the SKU
        else:
            item, skus = "coalesce(product_name, '(no product name)')", "list(DISTINCT sku) AS skus, "
        per_return = f"""{lines},
        per_return AS MATERIALIZED (
            SELECT {item} AS item, shop_id, return_id, any_value(status) AS status, any_value(reason) AS reason,
                   max(product_name) AS product_name, {skus}sum(refund_total) AS refund_total, 1 AS returns
            FROM lines GROUP BY 1, 2, 3
        )"""
    money = (
        'coalesce(sum(p.refund_total), 0) AS "Refund requested", '
        'coalesce(sum(p.refund_total) FILTER (WHERE p.status = ?), 0) AS "Refund completed"'
    ) if currency else 'NULL AS "Refund requested", NULL AS "Refund completed"'
    order = '"Refund requested" DESC, "Returns" DESC' if by_money else '"Returns" DESC, "Refund requested" DESC'
    # the leading reason shows a fit or quality problem
    sql = f"""{per_return},
        by_reason AS (SELECT item, reason, sum(returns) AS n FROM per_return GROUP BY item, reason),
        lead_reason AS (SELECT item, first(reason ORDER BY n DESC, reason) AS reason, max(n) AS n
                        FROM by_reason GROUP BY item)
        SELECT p.item AS "{name}", {detail}, {_count_sql("p")} AS "Returns", {money},
               any_value(l.reason) AS "Top reason",
               CAST(any_value(l.n) / sum(p.returns) AS DOUBLE) AS "Top reason share"
        FROM per_return p JOIN lead_reason l ON l.item = p.item
        GROUP BY p.item ORDER BY {order}, 1 LIMIT ?"""
    extra = [domain.REFUNDED] if currency else []
    return _query(db, sql, params + extra + [limit])


def reason_sku_matrix(db: Database, filters: ReturnFilters, *, by: GroupBy = "reason", limit_skus: int = 15
                      ) -> pd.DataFrame:
    """Returns per (SKU, reason or group) over the top SKUs by returns: SKU, Reason|Group, Returns."""
    key, name = ("reason", "Reason") if by == "reason" else ("reason_group", "Group")
    daily = _daily(filters, "daily_skus")
    if daily is not None:  # a SKU's daily rows count each return once already
        base, params = _base(filters, classify=by != "reason", daily=daily)
        per_return = f"""{base},
        per_return AS (SELECT coalesce(sku, '{NO_SKU}') AS sku, {key} AS k, returns FROM base)"""
    else:
        lines, params = _lines(filters, classify=by != "reason")
        per_return = f"""{lines},
        per_return AS MATERIALIZED (SELECT DISTINCT sku, shop_id, return_id, {key} AS k, 1 AS returns FROM lines)"""
    sql = f"""{per_return},
        top AS (SELECT sku, sum(returns) AS n FROM per_return GROUP BY sku ORDER BY n DESC, sku LIMIT ?)
        SELECT p.sku AS "SKU", p.k AS "{name}", {_count_sql("p")} AS "Returns"
        FROM per_return p JOIN top t ON t.sku = p.sku
        GROUP BY 1, 2, t.n ORDER BY t.n DESC, 1, 3 DESC, 2"""
    return _query(db, sql, params + [limit_skus])


# --- spikes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeRule:
    """When a recent count is a spike: at least `min_count` and `min_ratio` times the weekly baseline."""

    window_days: int = 7
    baseline_weeks: int = 8
    # the week just before the window is left out of the baseline: a problem that began a few
    # days before the window would otherwise raise its own baseline and hide itself
    guard_weeks: int = 1
    min_count: int = 5
    min_ratio: float = 3.0
    # hundreds of reasons and SKUs are checked at once; a chance this small keeps the few that
    # wobble to 3× on small numbers (5 against 1.5 a week) out of the list
    max_chance: float = 0.001

    def describe_rate(self) -> str:
        guard = f", leaving out the {self.guard_weeks} week just before," if self.guard_weeks else ""
        return (
            f"Judged on the return rate (units returned ÷ units sold): a reason, SKU, or SKU × reason of one "
            f"account is a spike when its rate over the last {self.window_days} days is at least "
            f"{self.min_ratio:g}× its rate over the {self.baseline_weeks} weeks before{guard} with at least "
            f"{self.min_count} units returned, and chance alone would give that many in fewer than 1 in "
            f"{round(1 / self.max_chance):,} weeks (Poisson at the usual rate × the units sold in those days). "
            f"A reason's rate divides by all the account's units sold. A SKU that sells twice as much is expected "
            f"to return twice as much, so it is not flagged for that."
        )

    def describe(self) -> str:
        guard = f", leaving out the {self.guard_weeks} week just before," if self.guard_weeks else ""
        return (
            f"A reason, SKU, or SKU × reason of one account is a spike when its returns over the last "
            f"{self.window_days} days are at least {self.min_count}, at least {self.min_ratio:g}× its average "
            f"week over the {self.baseline_weeks} weeks before{guard} and so far above it that chance alone "
            f"would give that many in fewer than 1 in {round(1 / self.max_chance):,} weeks (Poisson)."
        )


@dataclass(frozen=True)
class SpikeReport:
    """Recent counts against their baseline, as of the day of the latest return in view."""

    rule: SpikeRule
    as_of: date | None  # last day of the recent window; None when there are no returns
    window_start: date | None
    baseline_start: date | None
    baseline_end: date | None  # last day of the baseline (the guard weeks follow it)
    baseline_weeks: float  # the weeks of history the baseline really covers
    rows: pd.DataFrame  # Account, Level, SKU, Reason, Recent, Baseline, Weekly Baseline, Ratio, Chance, Spike

    @property
    def spikes(self) -> pd.DataFrame:
        """Only the rows that are spikes."""
        return self.rows[self.rows["Spike"]].reset_index(drop=True)

    def window_filters(self, filters: ReturnFilters, account: str, *, sku: str | None = None,
                       reason: str | None = None) -> ReturnFilters:
        """The filters that select exactly the recent returns of one row (its account, SKU, reason)."""
        narrowed = filters.with_(shop_ids=(account,), created_from=self.window_start, created_to=self.as_of)
        if sku:
            narrowed = narrowed.with_(skus=(sku,))
        if reason:
            narrowed = narrowed.with_(reasons=(reason,))
        return narrowed


_SPIKE_COLUMNS = ["Account", "Level", "SKU", "Reason", "Recent", "Baseline", "Weekly Baseline", "Ratio", "Chance",
                  "Spike"]


def spikes(db: Database, filters: ReturnFilters, rule: SpikeRule = SpikeRule(), *, limit: int = 200,
           today: date | None = None) -> SpikeReport:
    """Per account: reasons, SKUs and SKU × reason pairs whose last days run well above their usual weeks.

    Counts stay per account: a quality problem shows in one shop's stock, and pooling shops that
    sell the same SKU would dilute it. The recent window is the `window_days` whole UTC days
    ending on the last complete day with returns in view: yesterday (today is still filling
    up), or the day of the latest return when the data is older (a store synced days ago still
    gets a full window). The period's start is ignored: the baseline must reach back
    `baseline_weeks` before the window.
    """
    scope = filters.with_(created_from=None)
    yesterday = (today or utcnow().date()) - timedelta(days=1)
    if scope.created_to is None or scope.created_to > yesterday:
        scope = scope.with_(created_to=yesterday)
    where, params = _returns_where(scope)
    table = _daily(scope, "daily_returns") or "returns"
    with db.reader() as con:
        first, last = con.execute(
            f"SELECT CAST(min(r.created_at) AS DATE), CAST(max(r.created_at) AS DATE) FROM {table} r WHERE {where}",
            params,
        ).fetchone()
        if last is None:
            return SpikeReport(rule, None, None, None, None, 0.0, pd.DataFrame(columns=_SPIKE_COLUMNS))
        window_start = last - timedelta(days=rule.window_days - 1)
        guard_start = window_start - timedelta(weeks=rule.guard_weeks)
        baseline_start = max(guard_start - timedelta(weeks=rule.baseline_weeks), first)
        weeks = max((guard_start - baseline_start).days, 0) / 7
        rows = _spike_rows(con, scope.with_(created_from=baseline_start, created_to=last), window_start,
                           guard_start, weeks, rule, limit)
    return SpikeReport(rule, last, window_start, baseline_start, guard_start - timedelta(days=1), weeks, rows)


# The SKU and SKU × reason rows of `counted`, from `pairs` (per account, SKU and reason: recent_n,
# baseline_n): the same whether the pairs were counted from the returns or from the daily rows.
_SKU_LEVELS = """UNION ALL
            SELECT shop_id, 'SKU', sku, CAST(NULL AS VARCHAR), CAST(sum(recent_n) AS BIGINT),
                   CAST(sum(baseline_n) AS BIGINT)
            FROM pairs GROUP BY shop_id, sku
            UNION ALL
            SELECT shop_id, 'SKU × Reason', sku, reason, recent_n, baseline_n FROM pairs"""


def _spike_counts(filters: ReturnFilters, window_start: date, guard_start: date) -> tuple[str, list]:
    """`WITH` clause ending in `counted` (Account, Level, SKU, Reason, Recent, Baseline), from the returns."""
    base, params = _base(filters, classify=False)
    # A return has one reason and one date, so per (SKU, reason) or reason, counting distinct
    # returns is counting rows once each return's SKUs are distinct; a SKU's count is the sum of
    # its (SKU, reason) counts. This avoids count(DISTINCT) over grouping sets, which held six
    # hash tables of every return in the baseline (230 MB at 1M returns). Returns in the guard
    # weeks count nowhere and are left out first.
    sql = f"""{base},
        tagged AS (
            SELECT shop_id, return_id, reason, lines, CAST(created_at AS DATE) >= ? AS recent,
                   CAST(created_at AS DATE) < ? AS baseline
            FROM base WHERE CAST(created_at AS DATE) >= ? OR CAST(created_at AS DATE) < ?
        ),
        pairs AS MATERIALIZED (
            SELECT shop_id, sku, reason, count(*) FILTER (WHERE recent) AS recent_n,
                   count(*) FILTER (WHERE baseline) AS baseline_n
            FROM (SELECT DISTINCT shop_id, return_id, coalesce(li.seller_sku, li.sku_id) AS sku, reason,
                         recent, baseline
                  FROM (SELECT *, unnest(lines) AS li FROM tagged)
                  WHERE coalesce(li.seller_sku, li.sku_id) IS NOT NULL)
            GROUP BY shop_id, sku, reason
        ),
        counted AS (
            SELECT shop_id AS "Account", 'Reason' AS "Level", CAST(NULL AS VARCHAR) AS "SKU", reason AS "Reason",
                   count(*) FILTER (WHERE recent) AS "Recent", count(*) FILTER (WHERE baseline) AS "Baseline"
            FROM tagged GROUP BY shop_id, reason
            {_SKU_LEVELS}
        )"""
    return sql, params + [window_start, guard_start] * 2


def _daily_spike_counts(filters: ReturnFilters, window_start: date, guard_start: date) -> tuple[str, list]:
    """`_spike_counts` from the daily pre-aggregates: a reason's returns from `daily_returns`, a SKU's from
    `daily_skus` (whose rows count a return once per SKU already)."""
    where, params = _returns_where(filters)
    window = """CAST(r.created_at AS DATE) >= ? AS recent, CAST(r.created_at AS DATE) < ? AS baseline"""
    sql = f"""
        WITH tagged AS (
            SELECT r.shop_id, coalesce(r.reason_text, '{NO_REASON}') AS reason, r.returns, {window}
            FROM daily_returns r WHERE {where}
        ),
        sku_tagged AS (
            SELECT r.shop_id, r.sku, coalesce(r.reason_text, '{NO_REASON}') AS reason, r.returns, {window}
            FROM daily_skus r WHERE {where} AND r.sku IS NOT NULL
        ),
        pairs AS MATERIALIZED (
            SELECT shop_id, sku, reason, {_count_sql("s", "recent")} AS recent_n,
                   {_count_sql("s", "baseline")} AS baseline_n
            FROM sku_tagged s GROUP BY shop_id, sku, reason
        ),
        counted AS (
            SELECT shop_id AS "Account", 'Reason' AS "Level", CAST(NULL AS VARCHAR) AS "SKU", reason AS "Reason",
                   {_count_sql("t", "recent")} AS "Recent", {_count_sql("t", "baseline")} AS "Baseline"
            FROM tagged t GROUP BY shop_id, reason
            {_SKU_LEVELS}
        )"""
    # a day in the guard weeks is neither recent nor baseline: its returns count nowhere
    return sql, ([window_start, guard_start] + params) * 2


def _spike_rows(con: duckdb.DuckDBPyConnection, filters: ReturnFilters, window_start: date, guard_start: date,
                weeks: float, rule: SpikeRule, limit: int) -> pd.DataFrame:
    """Recent and baseline counts per account and reason, SKU, and SKU × reason, each tested for a spike."""
    counts = _daily_spike_counts if _daily(filters, "daily_skus") is not None else _spike_counts
    counted, params = counts(filters, window_start, guard_start)
    sql = f"""{counted},
        rated AS (
            SELECT *, "Baseline" / ? AS "Weekly Baseline" FROM counted WHERE "Recent" > 0
        ),
        tested AS (
            -- Poisson tail P(X >= Recent) at the usual weekly rate; 0 when there is no usual rate
            SELECT *, CASE WHEN "Weekly Baseline" > 0 THEN "Recent" / "Weekly Baseline" END AS "Ratio",
                   CASE WHEN "Weekly Baseline" = 0 THEN 0.0 ELSE greatest(0.0, 1 - list_sum(list_transform(
                       range("Recent"), lambda i: exp(-"Weekly Baseline" + i * ln("Weekly Baseline") - lgamma(i + 1))
                   ))) END AS "Chance"
            FROM rated
        )
        SELECT *, ? > 0 AND "Recent" >= ? AND "Recent" >= ? * "Weekly Baseline" AND "Chance" < ? AS "Spike"
        FROM tested
        ORDER BY "Spike" DESC, "Recent" - "Weekly Baseline" DESC, "Account", "Level", "SKU", "Reason"
        LIMIT ?"""
    # a window with no baseline weeks behind it cannot be compared: nothing is a spike then
    extra = [weeks or 1.0, weeks, rule.min_count, rule.min_ratio, rule.max_chance, limit]
    return exact_frame(con, sql, params + extra)


# --- return rate: returned units ÷ units sold -------------------------------------------------

RateLevel = Literal["sku", "product", "reason"]


@dataclass(frozen=True)
class RateRule:
    """How a return rate is shown: with a Wilson interval, and no headline under `min_units` sold."""

    min_units: int = 30
    z: float = 1.96  # 95 %

    def describe(self) -> str:
        return (
            "Return rate = units returned ÷ units sold, over the days of the period whose units sold are synced "
            "from TikTok (each shop's own days; returns by their created day, UTC). Each line item of a return is "
            "one unit. The range is a 95 % Wilson interval: where the true rate plausibly lies given how few units "
            f"there are. Under {self.min_units} units sold a rate is marked *too few sales* and never ranked first."
        )


@dataclass(frozen=True)
class RateCoverage:
    """The days of the period that have units sold, over the shops in view."""

    first_day: date | None  # None: no shop in view has units sold synced for the period
    last_day: date | None
    shops: int  # shops in view with units sold in the period
    shops_without: tuple[str, ...]  # shops in view with returns but no units sold synced


def _shop_params(filters: ReturnFilters) -> list:
    """Parameters of "(CAST(? AS BOOLEAN) OR list_contains(CAST(? AS VARCHAR[]), shop_id))": the shops in
    view, every shop when the Account View names none."""
    return [not filters.shop_ids, list(filters.shop_ids)]


def _rated_units(filters: ReturnFilters) -> tuple[str, list]:
    """`WITH` clause: `covered` (each shop's days of the period with units sold), `returned` (one row per
    returned unit on a covered day), `sold` (units sold per shop and SKU id on covered days), `names`."""
    base, params = _base(filters, classify=False)
    sql = f"""{base},
        covered AS (
            SELECT shop_id, greatest(first_day, coalesce(CAST(? AS DATE), first_day)) AS first_day,
                   least(last_day, coalesce(CAST(? AS DATE), last_day)) AS last_day
            FROM sales_state WHERE (CAST(? AS BOOLEAN) OR list_contains(CAST(? AS VARCHAR[]), shop_id))
        ),
        returned AS (
            SELECT b.shop_id, b.return_id, b.reason, CAST(b.created_at AS DATE) AS day, li.sku_id,
                   coalesce(li.seller_sku, li.sku_id, '{NO_SKU}') AS sku, li.product_name
            FROM (SELECT *, unnest(lines) AS li FROM base) b JOIN covered c ON c.shop_id = b.shop_id
            WHERE CAST(b.created_at AS DATE) BETWEEN c.first_day AND c.last_day
              -- with SKUs chosen, only their units: a return's other items are other SKUs' returns
              AND (CAST(? AS BOOLEAN) OR list_contains(CAST(? AS VARCHAR[]), coalesce(li.seller_sku, li.sku_id)))
        ),
        names AS (  -- the seller SKU and product name of a SKU id, from any return that carried it
            SELECT shop_id, sku_id, max(seller_sku) AS seller_sku, max(product_name) AS product_name
            FROM return_line_items WHERE sku_id IS NOT NULL GROUP BY 1, 2
        ),
        sold AS (
            SELECT s.shop_id, s.sku_id, any_value(s.product_id) AS product_id,
                   coalesce(any_value(n.seller_sku), s.sku_id) AS sku, any_value(n.product_name) AS product_name,
                   sum(s.units_sold) AS units
            FROM sku_sales s JOIN covered c ON c.shop_id = s.shop_id AND s.day BETWEEN c.first_day AND c.last_day
                 LEFT JOIN names n ON n.shop_id = s.shop_id AND n.sku_id = s.sku_id
            WHERE (CAST(? AS BOOLEAN) OR list_contains(CAST(? AS VARCHAR[]), coalesce(n.seller_sku, s.sku_id)))
            GROUP BY 1, 2
        )
    """
    skus = [not filters.skus, list(filters.skus)]
    return sql, params + [filters.created_from, filters.created_to] + _shop_params(filters) + skus + skus


# Rate, its Wilson interval and the too-few-sales mark, over `joined` ("Units returned" k of "Units sold" n; k is
# capped at n for the interval: returns of units sold before the period can outnumber the period's sales).
# Parameters: z, then the minimum units sold.
_RATE_SQL = """
        SELECT * EXCLUDE (k, n, kk, z, min_units),
               CASE WHEN n > 0 THEN k / n END AS "Return rate",
               CASE WHEN n > 0 THEN greatest(0.0, (kk + z * z / 2 - z * sqrt(kk * (n - kk) / n + z * z / 4))
                                                  / (n + z * z)) END AS "Low",
               CASE WHEN n > 0 THEN least(1.0, (kk + z * z / 2 + z * sqrt(kk * (n - kk) / n + z * z / 4))
                                               / (n + z * z)) END AS "High",
               n >= min_units AS "Enough sales"
        FROM (SELECT *, "Units returned" AS k, "Units sold" AS n, least("Units returned", "Units sold") AS kk,
                     CAST(? AS DOUBLE) AS z, CAST(? AS BIGINT) AS min_units FROM joined)
"""


def return_rates(db: Database, filters: ReturnFilters, level: RateLevel = "sku", *, rule: RateRule = RateRule(),
                 limit: int = 50) -> pd.DataFrame:
    """Return rate per SKU, product or reason over the period's covered days, next to the counts.

    SKU: SKU, Product, Returns, Units returned, Units sold, Return rate, Low, High, Enough sales.
    Product: Product, SKUs, the same. Reason: Reason, the same; its units sold are every unit sold in view.
    Ranked by the interval's low end (the rate one can be sure of), SKUs with enough sales first.
    """
    base, params = _rated_units(filters)
    if level == "sku":
        sql = f"""{base},
            r AS (SELECT sku, max(product_name) AS product, count(DISTINCT (shop_id, return_id)) AS returns,
                         count(*) AS units FROM returned GROUP BY sku),
            s AS (SELECT sku, max(product_name) AS product, sum(units) AS units FROM sold GROUP BY sku),
            joined AS (
                SELECT coalesce(r.sku, s.sku) AS "SKU", coalesce(r.product, s.product) AS "Product",
                       coalesce(r.returns, 0) AS "Returns", coalesce(r.units, 0) AS "Units returned",
                       CAST(coalesce(s.units, 0) AS BIGINT) AS "Units sold"
                FROM r FULL JOIN s ON r.sku = s.sku
            )"""
        key = '"SKU"'
    elif level == "product":
        sql = f"""{base},
            product_of AS (SELECT shop_id, sku_id, any_value(product_id) AS product_id FROM sku_sales GROUP BY 1, 2),
            r AS (SELECT coalesce(p.product_id, 'name:' || coalesce(x.product_name, '')) AS product_key,
                         max(x.product_name) AS product, list(DISTINCT x.sku ORDER BY x.sku) AS skus,
                         count(DISTINCT (x.shop_id, x.return_id)) AS returns, count(*) AS units
                  FROM returned x LEFT JOIN product_of p ON p.shop_id = x.shop_id AND p.sku_id = x.sku_id
                  GROUP BY 1),
            s AS (SELECT ps.product_id AS product_key, sum(ps.items_sold) AS units
                  FROM product_sales ps JOIN covered c ON c.shop_id = ps.shop_id
                       AND ps.day BETWEEN c.first_day AND c.last_day
                  WHERE ps.product_id IN (SELECT product_id FROM sold) GROUP BY 1),
            product_names AS (SELECT product_id AS product_key, max(product_name) AS product,
                                     list(DISTINCT sku ORDER BY sku) AS skus FROM sold GROUP BY 1),
            joined AS (
                SELECT coalesce(r.product, pn.product, k.product_key) AS "Product",
                       coalesce(r.skus, pn.skus) AS "SKUs", coalesce(r.returns, 0) AS "Returns",
                       coalesce(r.units, 0) AS "Units returned", CAST(coalesce(s.units, 0) AS BIGINT) AS "Units sold"
                FROM (SELECT product_key FROM r UNION SELECT product_key FROM s) k
                     LEFT JOIN r USING (product_key) LEFT JOIN s USING (product_key)
                     LEFT JOIN product_names pn USING (product_key)
            )"""
        key = '"Product"'
    else:
        sql = f"""{base},
            total AS (SELECT CAST(coalesce(sum(units), 0) AS BIGINT) AS units FROM sold),
            joined AS (
                SELECT r.reason AS "Reason", count(DISTINCT (r.shop_id, r.return_id)) AS "Returns",
                       count(*) AS "Units returned", any_value(t.units) AS "Units sold"
                FROM returned r CROSS JOIN total t GROUP BY r.reason
            )"""
        key = '"Reason"'
    sql += _RATE_SQL + f"""
        ORDER BY "Enough sales" DESC, "Low" DESC NULLS LAST, "Units returned" DESC, {key} LIMIT ?"""
    return _query(db, sql, params + [rule.z, rule.min_units, limit])


def rate_coverage(db: Database, filters: ReturnFilters) -> RateCoverage:
    """Which days of the period, and which shops in view, have units sold to divide by."""
    where, params = _returns_where(filters)
    with db.reader() as con:
        first, last, count = con.execute(
            """SELECT min(greatest(first_day, coalesce(CAST(? AS DATE), first_day))),
                       max(least(last_day, coalesce(CAST(? AS DATE), last_day))), count(*)
                FROM sales_state WHERE (CAST(? AS BOOLEAN) OR list_contains(CAST(? AS VARCHAR[]), shop_id))
                  AND greatest(first_day, coalesce(CAST(? AS DATE), first_day))
                      <= least(last_day, coalesce(CAST(? AS DATE), last_day))""",
            [filters.created_from, filters.created_to, *_shop_params(filters), filters.created_from,
             filters.created_to]
        ).fetchone()
        without = [row[0] for row in con.execute(
            f"""SELECT DISTINCT r.shop_id FROM returns r WHERE {where}
                AND r.shop_id NOT IN (SELECT shop_id FROM sales_state) ORDER BY 1""", params).fetchall()]
    return RateCoverage(first, last, count, tuple(without))


_RATE_SPIKE_COLUMNS = ["Account", "Level", "SKU", "Reason", "Recent", "Recent sold", "Recent rate", "Baseline",
                       "Baseline sold", "Baseline rate", "Expected", "Ratio", "Chance", "Spike"]


def rate_spikes(db: Database, filters: ReturnFilters, rule: SpikeRule = SpikeRule(), *, limit: int = 200,
                today: date | None = None) -> SpikeReport:
    """Like `spikes`, but on the return rate: recent returned units against the units sold in the same days
    at the baseline weeks' rate, so selling more is not mistaken for returning more.

    The recent window ends on the last complete day with returns in view that has units sold synced;
    each account counts only its own days with units sold (returns and sales alike).
    """
    scope = filters.with_(created_from=None)
    yesterday = (today or utcnow().date()) - timedelta(days=1)
    if scope.created_to is None or scope.created_to > yesterday:
        scope = scope.with_(created_to=yesterday)
    where, params = _returns_where(scope)
    empty = SpikeReport(rule, None, None, None, None, 0.0, pd.DataFrame(columns=_RATE_SPIKE_COLUMNS))
    with db.reader() as con:
        first, last = con.execute(
            f"SELECT CAST(min(r.created_at) AS DATE), CAST(max(r.created_at) AS DATE) FROM returns r WHERE {where}",
            params).fetchone()
        sales_first, sales_last = con.execute(
            "SELECT min(first_day), max(last_day) FROM sales_state "
            "WHERE (CAST(? AS BOOLEAN) OR list_contains(CAST(? AS VARCHAR[]), shop_id))", _shop_params(scope)
        ).fetchone()
        if last is None or sales_last is None:
            return empty
        last = min(last, sales_last)
        window_start = last - timedelta(days=rule.window_days - 1)
        guard_start = window_start - timedelta(weeks=rule.guard_weeks)
        baseline_start = max(guard_start - timedelta(weeks=rule.baseline_weeks), first, sales_first)
        weeks = max((guard_start - baseline_start).days, 0) / 7
        rows = _rate_spike_rows(con, scope.with_(created_from=baseline_start, created_to=last), window_start,
                                guard_start, weeks, rule, limit)
    return SpikeReport(rule, last, window_start, baseline_start, guard_start - timedelta(days=1), weeks, rows)


def _rate_spike_rows(con: duckdb.DuckDBPyConnection, filters: ReturnFilters, window_start: date, guard_start: date,
                     weeks: float, rule: SpikeRule, limit: int) -> pd.DataFrame:
    """Recent and baseline returned units and units sold per account and reason, SKU, and SKU × reason."""
    base, params = _rated_units(filters)
    sql = f"""{base},
        units AS MATERIALIZED (
            SELECT shop_id, reason, sku, day >= ? AS recent, day < ? AS baseline
            FROM returned WHERE sku <> '{NO_SKU}'
        ),
        sku_sold AS MATERIALIZED (
            SELECT s.shop_id, coalesce(any_value(n.seller_sku), s.sku_id) AS sku,
                   coalesce(sum(s.units_sold) FILTER (WHERE s.day >= ?), 0) AS sold_recent,
                   coalesce(sum(s.units_sold) FILTER (WHERE s.day < ?), 0) AS sold_baseline
            FROM sku_sales s JOIN covered c ON c.shop_id = s.shop_id AND s.day BETWEEN c.first_day AND c.last_day
                 LEFT JOIN names n ON n.shop_id = s.shop_id AND n.sku_id = s.sku_id
            GROUP BY s.shop_id, s.sku_id
        ),
        by_sku AS (SELECT shop_id, sku, sum(sold_recent) AS sold_recent, sum(sold_baseline) AS sold_baseline
                   FROM sku_sold GROUP BY 1, 2),
        by_shop AS (SELECT shop_id, sum(sold_recent) AS sold_recent, sum(sold_baseline) AS sold_baseline
                    FROM sku_sold GROUP BY 1),
        counted AS (
            SELECT u.shop_id AS "Account", 'Reason' AS "Level", CAST(NULL AS VARCHAR) AS "SKU", u.reason AS "Reason",
                   count(*) FILTER (WHERE recent) AS "Recent", any_value(t.sold_recent) AS "Recent sold",
                   count(*) FILTER (WHERE baseline) AS "Baseline", any_value(t.sold_baseline) AS "Baseline sold"
            FROM units u JOIN by_shop t ON t.shop_id = u.shop_id GROUP BY u.shop_id, u.reason
            UNION ALL
            SELECT u.shop_id, 'SKU', u.sku, CAST(NULL AS VARCHAR), count(*) FILTER (WHERE recent),
                   any_value(t.sold_recent), count(*) FILTER (WHERE baseline), any_value(t.sold_baseline)
            FROM units u JOIN by_sku t ON t.shop_id = u.shop_id AND t.sku = u.sku GROUP BY u.shop_id, u.sku
            UNION ALL
            SELECT u.shop_id, 'SKU × Reason', u.sku, u.reason, count(*) FILTER (WHERE recent), any_value(t.sold_recent),
                   count(*) FILTER (WHERE baseline), any_value(t.sold_baseline)
            FROM units u JOIN by_sku t ON t.shop_id = u.shop_id AND t.sku = u.sku GROUP BY u.shop_id, u.sku, u.reason
        ),
        rated AS (
            SELECT *, CASE WHEN "Recent sold" > 0 THEN "Recent" / "Recent sold" END AS "Recent rate",
                   CASE WHEN "Baseline sold" > 0 THEN "Baseline" / "Baseline sold" END AS "Baseline rate"
            FROM counted WHERE "Recent" > 0
        ),
        expected AS (SELECT *, "Recent sold" * "Baseline rate" AS "Expected" FROM rated),
        tested AS (
            -- Poisson tail P(X >= Recent) at the usual rate times the units sold; 0 when the usual rate is 0
            SELECT *, CASE WHEN "Expected" > 0 THEN "Recent rate" / "Baseline rate" END AS "Ratio",
                   CASE WHEN "Expected" IS NULL THEN NULL WHEN "Expected" = 0 THEN 0.0
                        ELSE greatest(0.0, 1 - list_sum(list_transform(
                            range("Recent"), lambda i: exp(-"Expected" + i * ln("Expected") - lgamma(i + 1))))) END
                       AS "Chance"
            FROM expected
        )
        SELECT "Account", "Level", "SKU", "Reason", "Recent", "Recent sold", "Recent rate", "Baseline", "Baseline sold",
               "Baseline rate", "Expected", "Ratio", "Chance",
               coalesce(? > 0 AND "Recent sold" > 0 AND "Recent" >= ? AND "Recent" >= ? * "Expected" AND "Chance" < ?,
                        false) AS "Spike"
        FROM tested
        ORDER BY "Spike" DESC, "Recent" - coalesce("Expected", 0) DESC, "Account", "Level", "SKU", "Reason"
        LIMIT ?"""
    extra = [weeks, rule.min_count, rule.min_ratio, rule.max_chance, limit]
    return exact_frame(con, sql, params + [window_start, guard_start] * 2 + extra)
