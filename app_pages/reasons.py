"""Reason Analytics: what drives returns, for which SKUs, since when, and what it costs.

UI only: every number comes from returns_core.store.analytics (SQL in DuckDB). Every chart drills down:
a click on a bar or cell, or a pick in the select box under it, opens the Returns grid on
exactly those rows (the grid's own URL filters, plus the Account View).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_ui import loaders
from app_ui.account_view import ACCOUNT_KEY, ALL_ACCOUNTS, Scope, scope
from app_ui.formatting import md_escape
from app_ui.navigation import GRID_PAGE
from returns_core import domain, reason_groups
from returns_core.filters import ReturnFilters, grid_query, week_filters
from returns_core.spreadsheet import safe_frame
from returns_core.store import analytics
from returns_core.store.analytics import Measure
from returns_core.store.db import utcnow

PENDING = "reasons_open"  # the grid query a click or pick asked for; acted on at the top of the next run
PERIODS = ("Last 30 days", "Last 90 days", "Last 12 months", "All time", "Custom range")
PERIOD_DAYS = {"Last 30 days": 30, "Last 90 days": 90, "Last 12 months": 365}
TOP_N = 15
PARETO_N = 10  # the at-a-glance Pareto; the cumulative line still counts every reason
CHART_CONFIG = {"displaylogo": False}

Targets = dict[str, ReturnFilters]  # drill-down label -> the exact rows it opens


# --- drill-down to the grid -----------------------------------------------------------------


def targets(items: Iterable[tuple[str, ReturnFilters]]) -> Targets:
    """Drill-down labels and their rows, for the rows the grid's URL can express."""
    return {label: filters for label, filters in items if grid_query(filters) is not None}


def request_grid(filters: ReturnFilters) -> None:
    """Ask for the grid on these rows (from a callback; the next run switches pages)."""
    current = scope()
    if filters.shop_ids and filters.shop_ids != current.shop_ids:
        # a spike belongs to one account: the Account View moves to it, so the grid shows those rows
        account = next((a for a in current.accounts if a.shop_id == filters.shop_ids[0]), None)
        if account is None:
            return
        st.session_state[ACCOUNT_KEY] = account.label
    # the Account View is not among the query params: its ?account= is bound to the sidebar
    # widget, which keeps its value across the switch (and refuses to be set through them)
    st.session_state[PENDING] = grid_query(filters)


def on_chart_select(key: str, found: Targets) -> None:
    """A clicked bar or cell carries its drill-down label in customdata."""
    for point in st.session_state[key]["selection"]["points"]:
        label = point.get("customdata")
        label = label[0] if isinstance(label, list) else label
        if label in found:
            request_grid(found[label])
            return


def on_pick(key: str, found: Targets) -> None:
    """A pick in a chart's select box opens its returns in the grid."""
    label = st.session_state[key]
    st.session_state[key] = None  # so that coming back here does not jump to the grid again
    if label in found:
        request_grid(found[label])


def drill_controls(key: str, found: Targets, data: pd.DataFrame, file_name: str, noun: str = "bar") -> None:
    """The keyboard twin of clicking the chart (or table), and its data as CSV."""
    left, right = st.columns([4, 1], vertical_alignment="bottom")
    left.selectbox("Open in the Returns grid", list(found), index=None, key=f"{key}_open",
                   on_change=partial(on_pick, f"{key}_open", found), placeholder=f"Pick a {noun} to see its returns…",
                   disabled=not found, help=f"Or click a {noun} above")
    right.download_button("CSV", csv_bytes(data), file_name=f"{file_name}.csv", mime="text/csv", key=f"{key}_csv",
                          on_click="ignore", icon=":material/download:", width="stretch")


def chart(fig: go.Figure, key: str, found: Targets, data: pd.DataFrame, file_name: str, noun: str = "bar") -> None:
    """A plotly chart whose clicks drill down, with its select box and CSV button."""
    fig.update_layout(margin={"t": 40, "b": 10, "l": 10, "r": 10}, clickmode="event+select",
                      legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"})
    st.plotly_chart(fig, key=key, on_select=partial(on_chart_select, key, found), selection_mode="points",
                    config=CHART_CONFIG)
    drill_controls(key, found, data, file_name, noun)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with lists joined, money exact (Decimal text, never float), and no text a spreadsheet runs."""
    out = frame.copy()
    for name in out.columns:
        if out[name].map(lambda v: isinstance(v, list)).any():
            out[name] = out[name].map(lambda v: "; ".join(map(str, v)) if isinstance(v, list) else v)
    return safe_frame(out).to_csv(index=False).encode()


# --- formatting -----------------------------------------------------------------------------


def money(amount: Decimal | None, currency: str) -> str:
    """An amount with its currency, two decimals (as Markdown: the currency comes from TikTok)."""
    return f"{amount or 0:,.2f} {md_escape(currency)}"


def duration(value: timedelta | None) -> str:
    """Hours, or days past 48 hours."""
    if value is None:
        return "-"
    hours = value.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def numbers(values: pd.Series) -> list[float]:
    """Chart heights: Decimal money becomes float only here, for drawing."""
    return [float(v) for v in values]


def wrapped(text: str, width: int = 16) -> str:
    """A long reason as a tick label of short lines."""
    lines, line = [], ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join([*lines, line])


def wrap_ticks(fig: go.Figure, axis: str, values: Iterable[str], *, short: bool = False) -> None:
    """Category ticks as short lines (or cut to one short slanted line when bars are narrow)."""
    values = list(dict.fromkeys(values))
    texts = [(v if len(v) <= 18 else v[:17] + "…") if short else wrapped(v) for v in map(str, values)]
    fig.update_layout({f"{axis}axis": {"tickvals": values, "ticktext": texts, "type": "category",
                                       "tickangle": -35 if short else 0}})


# --- filters --------------------------------------------------------------------------------


def page_filters(current: Scope) -> ReturnFilters:
    """Period, type and status on top of the sidebar's Account View."""
    c1, c2, c3, c4 = st.columns([1, 1, 1, 1])
    period = c1.selectbox("Period (created)", PERIODS, key="reasons_period",
                          help="By the date the buyer asked for the return (UTC). Periods end today.")
    today = utcnow().date()
    start: date | None = None
    end: date | None = None
    if period in PERIOD_DAYS:
        start, end = today - timedelta(days=PERIOD_DAYS[period] - 1), today
    elif period == "Custom range":
        picked = c2.date_input("From – to", value=(today - timedelta(days=29), today), key="reasons_range",
                               format="YYYY-MM-DD")
        days = tuple(picked or ())
        start, end = (days[0], days[-1]) if days else (None, None)
    types = c3.multiselect("Type", list(domain.TYPES), key="reasons_types", placeholder="Any type")
    statuses = c4.multiselect("Status", list(domain.STATUSES), key="reasons_statuses", placeholder="Any status")
    return ReturnFilters(shop_ids=current.shop_ids, types=tuple(types), statuses=tuple(statuses),
                         created_from=start, created_to=end)


def pick_currency(filters: ReturnFilters) -> str | None:
    """The currency money charts use (one at a time: amounts in different currencies never add up)."""
    found = loaders.currencies(filters)
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    return st.selectbox("Currency for money charts", found, key="reasons_currency",
                        help="Money is never added across currencies")


# --- sections -------------------------------------------------------------------------------


def kpi_row(filters: ReturnFilters) -> analytics.Kpis:
    """Returns, time to close and refund money at a glance, and the split by type."""
    k = loaders.kpis(filters)
    cols = st.columns(4)
    cols[0].metric("Returns", f"{k.returns:,}")
    cols[1].metric("Median time to close", duration(k.median_close),
                   help=f"Created → last update, over the {k.closed:,} closed returns (Refund, Rejected, Cancelled)")
    for i, row in enumerate(k.money.head(2).itertuples()):
        cols[2 + i].metric(f"Refund requested ({md_escape(row.Currency)})", money(row.Requested, row.Currency),
                           delta=f"{money(row.Completed, row.Currency)} completed", delta_color="off",
                           delta_arrow="off",
                           help=f"{row.Returns:,} returns with a refund amount; completed = Status Refund")
    if len(k.money) > 2:
        st.caption("Also: " + "; ".join(f"{money(r.Requested, r.Currency)} requested, "
                                         f"{money(r.Completed, r.Currency)} completed"
                                         for r in k.money.iloc[2:].itertuples()))
    if not k.by_type.empty:
        st.caption("By type: " + " · ".join(f"**{md_escape(r.Type)}** {r.Returns:,} ({r.Share:.0%})"
                                            for r in k.by_type.itertuples()))
    return k


def measure_picker(key: str, currency: str | None) -> Measure:
    """Count returns, or add up refund money in the chosen currency."""
    options = ["Returns"] + ([f"Refund money ({currency})"] if currency else [])
    choice = st.segmented_control("Measure", options, key=key, default="Returns", label_visibility="collapsed",
                                  format_func=md_escape)
    return Measure(currency) if choice and choice != "Returns" else analytics.RETURNS


def pareto(filters: ReturnFilters, currency: str | None) -> None:
    """Reasons (or groups) largest first, with the cumulative share line."""
    st.subheader("Top reasons")
    left, right = st.columns(2)
    with left:
        by = st.segmented_control("By", ["Reason", "Group"], key="reasons_pareto_by", default="Reason",
                                  label_visibility="collapsed")
    with right:
        measure = measure_picker("reasons_pareto_measure", currency)
    if by == "Group":
        data = loaders.group_frequency(filters, measure)
        name = "Group"
        found = targets((f"{r.Group}", filters.with_(reasons=tuple(r.Reasons or ()))) for r in data.itertuples()
                        if r.Reasons)
    else:
        data = loaders.reason_frequency(filters, measure).head(PARETO_N)
        name = "Reason"
        found = targets((r.Reason, filters.with_(reasons=(r.Reason,))) for r in data.itertuples()
                        if r.Reason != analytics.NO_REASON)
    if data.empty:
        st.info("No returns in this view.")
        return
    value = measure.column
    fig = go.Figure()
    fig.add_bar(x=data[name], y=numbers(data[value]), name=measure.label, customdata=data[name],
                hovertemplate="%{x}<br>%{y:,}<extra></extra>")
    fig.add_scatter(x=data[name], y=data["Cumulative Share"], name="Cumulative share", yaxis="y2",
                    mode="lines+markers", customdata=data[name], hovertemplate="%{y:.0%}<extra></extra>")
    fig.update_layout(height=400, yaxis={"title": measure.label},
                      yaxis2={"overlaying": "y", "side": "right", "tickformat": ".0%", "range": [0, 1.05]})
    wrap_ticks(fig, "x", data[name], short=True)
    chart(fig, "reasons_pareto", found, data, f"reasons-{name.lower()}")


def rank_by_money(key: str, currency: str | None) -> bool:
    """Rank by returns, or by refund money requested in the chosen currency."""
    return measure_picker(key, currency).currency is not None


def top_skus(filters: ReturnFilters, currency: str | None) -> None:
    """The SKUs returned most, each with its top reason."""
    st.subheader("Top SKUs")
    by_money = rank_by_money("reasons_sku_rank", currency)
    data = loaders.top_skus(filters, currency, by_money, 10)
    if data.empty:
        st.info("No SKUs in this view (returns without line items).")
        return
    column = "Refund requested" if by_money else "Returns"
    shown = data.iloc[::-1]  # largest on top of a horizontal bar chart
    fig = go.Figure(go.Bar(
        y=shown["SKU"], x=numbers(shown[column]), orientation="h", customdata=shown["SKU"],
        text=[f"{r} ({s:.0%})" for r, s in zip(shown["Top reason"], shown["Top reason share"], strict=True)],
        textposition="auto", hovertemplate="%{y}: %{x:,}<br>top reason: %{text}<extra></extra>"))
    fig.update_layout(height=360, xaxis={"title": column + (f" ({currency})" if by_money else "")})
    found = targets((r.SKU, filters.with_(skus=(r.SKU,))) for r in data.itertuples() if r.SKU != analytics.NO_SKU)
    chart(fig, "reasons_top_skus", found, data, "top-skus")


def spike_panel(filters: ReturnFilters, names: dict[str, str], has_sales: bool) -> analytics.SpikeReport:
    """Flagged spikes at a glance, judged on the return rate (when units sold are synced) or on counts;
    every check (near misses too) is in the last tab."""
    head, toggle = st.columns([3, 1], vertical_alignment="bottom")
    head.subheader("Spikes")
    options = ["Rate", "Count"] if has_sales else ["Count"]
    basis = toggle.segmented_control("Judged on", options, key="reasons_spike_basis", default=options[0],
                                     help="Rate: returned units against units sold, so selling more is not "
                                          "mistaken for returning more. Count: returns alone.")
    on_rate = basis == "Rate"
    report = loaders.rate_spikes(filters) if on_rate else loaders.spikes(filters)
    if report.as_of is None:
        st.info("No returns to compare.")
        return report
    ending = "with returns and units sold in view" if on_rate else "with returns in view"
    rule = report.rule.describe_rate() if on_rate else report.rule.describe()
    st.caption(f"{rule} Recent: **{report.window_start} to {report.as_of}** (UTC days, ending on the last "
               f"complete day {ending}); baseline: {report.baseline_start} to {report.baseline_end} "
               f"({report.baseline_weeks:g} weeks). The period's start does not shorten the baseline.")
    if report.spikes.empty:
        usual = "rate" if on_rate else "weekly level"
        st.success(f"No spikes: nothing is running well above its usual {usual}.", icon=":material/check:")
    else:
        labels = [item[0] for item in spike_items(report, filters, report.spikes, names) if item]
        st.warning(f"{len(report.spikes)} spike(s): " + "; ".join(map(md_escape, labels)) + ".",
                   icon=":material/trending_up:")
    spike_table(report, filters, report.spikes, names, "reasons_spikes_top")
    return report


PERCENT = st.column_config.NumberColumn(format="percent")
SPIKE_COLUMNS = {
    "Recent sold": st.column_config.NumberColumn(help="Units sold in the last 7 days"),
    "Recent rate": st.column_config.NumberColumn(format="percent", help="Units returned ÷ units sold, last 7 days"),
    "Baseline sold": st.column_config.NumberColumn(help="Units sold in the baseline weeks"),
    "Baseline rate": st.column_config.NumberColumn(format="percent", help="The usual rate, over the baseline"),
    "Expected": st.column_config.NumberColumn(format="%.1f", help="Units sold in the last 7 days × the usual rate"),
    "Recent": st.column_config.NumberColumn(help="Returns (units, when judged on the rate) in the last 7 days"),
    "Baseline": st.column_config.NumberColumn(help="Returns in the baseline weeks"),
    "Weekly Baseline": st.column_config.NumberColumn(format="%.2f", help="Average returns per baseline week"),
    "Ratio": st.column_config.NumberColumn(format="%.1f×", help="Recent ÷ weekly baseline (or recent rate ÷ usual "
                                           "rate); empty = new"),
    "Chance": st.column_config.NumberColumn(format="%.5f", help="How likely this many is in a usual week "
                                            "(Poisson tail at the weekly baseline)"),
}


def spike_items(report: analytics.SpikeReport, filters: ReturnFilters, rows: pd.DataFrame,
                names: dict[str, str]) -> list[tuple[str, ReturnFilters] | None]:
    """Per row: its label and the exact recent returns behind it (None when the grid cannot show them)."""
    items: list[tuple[str, ReturnFilters] | None] = []
    # judged on the rate, a row also has the units sold in the window
    solds = rows["Recent sold"].tolist() if "Recent sold" in rows.columns else [None] * len(rows)
    for row, sold in zip(rows.itertuples(), solds, strict=True):
        sku = row.SKU if isinstance(row.SKU, str) else None
        reason = row.Reason if isinstance(row.Reason, str) and row.Reason != analytics.NO_REASON else None
        ratio = "new" if pd.isna(row.Ratio) else f"{row.Ratio:.1f}×"
        counted = (f"{row.Recent} returned of {int(sold):,} sold in 7 days ({ratio} its usual rate)" if sold is not None
                   else f"{row.Recent} in 7 days ({ratio})")
        label = f"{' × '.join(p for p in (sku, reason) if p)} in {names.get(row.Account, row.Account)}: {counted}"
        narrowed = report.window_filters(filters, row.Account, sku=sku, reason=reason)
        exact = (reason is not None or row.Level == "SKU") and grid_query(narrowed) is not None
        items.append((label, narrowed) if exact else None)
    return items


def on_row_select(key: str, items: list[tuple[str, ReturnFilters] | None]) -> None:
    """A selected spike row opens its recent returns in the grid."""
    rows = st.session_state[key]["selection"]["rows"]
    if rows and items[rows[0]] is not None:
        request_grid(items[rows[0]][1])


def spike_table(report: analytics.SpikeReport, filters: ReturnFilters, rows: pd.DataFrame,
                names: dict[str, str], key: str) -> None:
    """Spike rows; selecting one (or picking it below) opens its recent returns in the grid."""
    items = spike_items(report, filters, rows, names)
    if not rows.empty:
        shown = rows.assign(Account=[names.get(a, a) for a in rows["Account"]])
        st.dataframe(shown, hide_index=True, key=f"{key}_table", selection_mode="single-row",
                     on_select=partial(on_row_select, f"{key}_table", items), column_config=SPIKE_COLUMNS)
    drill_controls(key, dict(item for item in items if item), rows, key.removeprefix("reasons_"), noun="row")


RATE_LEVELS = {"SKU": "sku", "Product": "product", "Reason": "reason"}
RATE_CHART_N = 15
RATE_TABLE_N = 50


def rate_range(low: object, high: object) -> str:
    """The interval in words ("1.2 % – 4.5 %"), empty without units sold."""
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"{low:.1%} – {high:.1%}"


def rate_note(row: pd.Series, rule: analytics.RateRule) -> str:
    """Why a rate is not a headline: nothing sold, or under the minimum."""
    if row["Units sold"] == 0:
        return "no units sold"
    if not row["Enough sales"]:
        return f"too few sales (< {rule.min_units})"
    return ""


def rate_chart(data: pd.DataFrame, name: str) -> go.Figure:
    """Each rate as a dot with its 95% range as whiskers, the surest (highest low end) on top."""
    shown = data.iloc[::-1]
    rates, lows, highs = numbers(shown["Return rate"]), numbers(shown["Low"]), numbers(shown["High"])
    words = [f"{r:.1%} ({u:,} of {n:,} sold), range {lo:.1%} – {hi:.1%}"
             for r, u, n, lo, hi in zip(rates, shown["Units returned"], shown["Units sold"], lows, highs, strict=True)]
    fig = go.Figure(go.Scatter(
        y=shown[name], x=rates, mode="markers", customdata=shown[name], text=words, marker={"size": 11},
        error_x={"type": "data", "symmetric": False, "array": [h - r for h, r in zip(highs, rates, strict=True)],
                 "arrayminus": [r - lo for r, lo in zip(rates, lows, strict=True)], "thickness": 2, "width": 4},
        hovertemplate="%{y}: %{text}<extra></extra>"))
    fig.update_layout(height=max(260, 30 * len(shown) + 100),
                      xaxis={"title": "Return rate, with its 95% range", "tickformat": ".0%", "rangemode": "tozero"})
    wrap_ticks(fig, "y", shown[name], short=True)
    fig.update_layout(yaxis={"tickangle": 0})
    return fig


def return_rate(filters: ReturnFilters, coverage: analytics.RateCoverage, names: dict[str, str]) -> None:
    """Units returned ÷ units sold per SKU, product or reason, with its interval, next to the counts."""
    rule = analytics.RateRule()
    head, toggle = st.columns([3, 1], vertical_alignment="bottom")
    head.subheader("Return rate")
    by = toggle.segmented_control("By", list(RATE_LEVELS), key="reasons_rate_by", default="SKU",
                                  label_visibility="collapsed") or "SKU"
    if coverage.first_day is None:
        st.info("No units sold synced for this view yet, so no return rate: sync the account (TikTok's "
                "Analytics API gives units sold per SKU and day).", icon=":material/percent:")
        return
    missing = [names.get(shop, shop) for shop in coverage.shops_without]
    st.caption(f"Units sold synced for **{coverage.first_day} to {coverage.last_day}** "
               f"({coverage.shops:,} account(s)); rates count only those days."
               + (f" No units sold yet for {', '.join(map(md_escape, missing))}: their returns are not in the rates."
                  if missing else ""))
    scope = filters
    if by == "SKU":
        products = loaders.return_rates(filters, "product", RATE_TABLE_N)
        skus_of = {r.Product: tuple(r.SKUs) for r in products.itertuples() if r.SKUs is not None and len(r.SKUs)}
        product = st.selectbox("Compare the SKUs of one product", list(skus_of), index=None, key="reasons_rate_product",
                               placeholder="Every SKU", help="A SKU against its siblings: same product, other "
                                                             "colours and sizes")
        if product:
            scope = filters.with_(skus=skus_of[product])
    data = loaders.return_rates(scope, RATE_LEVELS[by], RATE_TABLE_N)
    if data.empty:
        st.info("No units sold or returns in these days.")
        return
    name = by
    table = data.assign(**{"95% range": [rate_range(lo, hi) for lo, hi in zip(data["Low"], data["High"], strict=True)],
                           "Note": [rate_note(row, rule) for _, row in data.iterrows()]}
                        ).drop(columns=["Low", "High", "Enough sales"])
    # the rate first, beside its counts (a phone shows the first columns); names of products and SKUs last
    first = [name, "Return rate", "95% range", "Units returned", "Units sold", "Returns", "Note"]
    table = table[first + [c for c in table.columns if c not in first]]
    if by == "SKU":
        found = targets((r.SKU, filters.with_(skus=(r.SKU,))) for r in data.itertuples()
                        if r.SKU != analytics.NO_SKU and r.Returns > 0)
    elif by == "Product":
        found = targets((r.Product, filters.with_(skus=tuple(r.SKUs))) for r in data.itertuples()
                        if r.SKUs is not None and len(r.SKUs) and r.Returns > 0)
    else:
        found = targets((r.Reason, filters.with_(reasons=(r.Reason,))) for r in data.itertuples()
                        if r.Reason != analytics.NO_REASON)
    noun = "SKU" if by == "SKU" else by.lower()
    solid = data[data["Enough sales"]].head(RATE_CHART_N)
    if solid.empty:
        st.info(f"Every {by.lower()} here sold fewer than {rule.min_units} units: no rate is shown as a headline.")
        drill_controls("reasons_rate", found, table, f"return-rate-by-{by.lower()}", noun=noun)
    else:
        chart(rate_chart(solid, name), "reasons_rate", found, table, f"return-rate-by-{by.lower()}", noun=noun)
    st.dataframe(table, hide_index=True, key="reasons_rate_table", column_config={
        "Return rate": st.column_config.NumberColumn(format="percent", help="Units returned ÷ units sold"),
        "Units returned": st.column_config.NumberColumn(help="Line items of the returns (one unit each)"),
        "Units sold": st.column_config.NumberColumn(help="TikTok's units sold on the covered days"),
        "Returns": st.column_config.NumberColumn(help="Returns (requests), as counted elsewhere on the page")})
    st.caption(rule.describe())


def trend(filters: ReturnFilters, currency: str | None) -> None:
    """Returns per week, stacked by reason or group."""
    c1, c2, c3 = st.columns(3)
    with c1:
        by = st.segmented_control("By", ["Reason", "Group"], key="reasons_trend_by", default="Group")
    with c2:
        basis = st.segmented_control("Week of", ["Created", "Updated"], key="reasons_trend_basis", default="Created",
                                     help="Bucket by the date the return was created, or last updated")
    with c3:
        measure = measure_picker("reasons_trend_measure", currency)
    by_key = "group" if by == "Group" else "reason"
    basis_key = "updated" if basis == "Updated" else "created"
    data = loaders.weekly_trend(filters, by_key, basis_key, measure)
    if data.empty:
        st.info("No returns in this view.")
        return
    name = "Group" if by_key == "group" else "Reason"
    value = measure.column
    members = group_members(filters) if by_key == "group" else {}
    fig = go.Figure()
    items = []
    for key_value, part in data.groupby(name, sort=False):
        labels = [f"Week of {w} · {key_value}" for w in part["Week"]]
        fig.add_bar(x=part["Week"], y=numbers(part[value]), name=str(key_value), customdata=labels,
                    hovertemplate="%{customdata}<br>%{y:,}<extra></extra>")
        reasons = members.get(key_value, ()) if by_key == "group" else (key_value,)
        if reasons and key_value != analytics.NO_REASON:
            items += [(label, week_filters(filters, w, basis_key).with_(reasons=tuple(reasons)))
                      for label, w in zip(labels, part["Week"], strict=True)]
    fig.update_layout(barmode="stack", height=380, yaxis={"title": measure.label},
                      xaxis={"title": f"Week (Monday, by {basis_key} date)"})
    found = targets(items)
    chart(fig, "reasons_trend", found, data, f"weekly-{by_key}-{basis_key}")
    if basis_key == "updated":
        st.caption("The grid filters by created date only, so weeks by updated date do not open the grid.")


def group_members(filters: ReturnFilters) -> dict[str, tuple[str, ...]]:
    """The reasons in each group, in view."""
    groups = loaders.group_frequency(filters)
    return {r.Group: tuple(r.Reasons or ()) for r in groups.itertuples()}


def products(filters: ReturnFilters, currency: str | None) -> None:
    """Reason × SKU, the reasons of one SKU, and the top products."""
    head, toggle = st.columns([3, 1], vertical_alignment="bottom")
    head.markdown("**Reason × SKU** (top SKUs by returns)")
    by = toggle.segmented_control("Columns", ["Reason", "Group"], key="reasons_matrix_by", default="Reason",
                                  label_visibility="collapsed")
    by_key, name = ("group", "Group") if by == "Group" else ("reason", "Reason")
    matrix = loaders.reason_sku_matrix(filters, by_key, TOP_N)
    if matrix.empty:
        st.info("No SKUs in this view.")
    else:
        members = group_members(filters) if by_key == "group" else {}
        labels = [f"{s} × {r}" for s, r in zip(matrix["SKU"], matrix[name], strict=True)]
        fig = go.Figure(go.Scatter(
            x=matrix[name], y=matrix["SKU"], mode="markers+text", text=matrix["Returns"], customdata=labels,
            marker={"symbol": "square", "size": 34, "color": matrix["Returns"], "colorscale": "Reds",
                    "showscale": True, "line": {"width": 0}},
            textfont={"color": "black"}, hovertemplate="%{customdata}: %{text}<extra></extra>"))
        fig.update_layout(height=max(320, 40 * matrix["SKU"].nunique() + 160),
                          yaxis={"autorange": "reversed", "type": "category"})
        wrap_ticks(fig, "x", matrix[name], short=True)
        found = targets((label, filters.with_(skus=(s,), reasons=members.get(r, ()) if members else (r,)))
                        for label, s, r in zip(labels, matrix["SKU"], matrix[name], strict=True)
                        if r != analytics.NO_REASON and s != analytics.NO_SKU and (members.get(r) if members else True))
        chart(fig, "reasons_matrix", found, matrix, f"{by_key}-by-sku", noun="cell")

    st.markdown("**Reasons of one SKU**")
    skus = list(dict.fromkeys(matrix["SKU"])) if not matrix.empty else []
    sku = st.selectbox("SKU", skus, key="reasons_sku", disabled=not skus)
    if sku:
        one = filters.with_(skus=(sku,))
        data = loaders.reason_frequency(one)
        fig = go.Figure(go.Bar(x=data["Reason"], y=data["Returns"], customdata=data["Reason"],
                               text=[f"{s:.0%}" for s in data["Share"]], textposition="auto"))
        fig.update_layout(height=320, yaxis={"title": "Returns"})
        wrap_ticks(fig, "x", data["Reason"], short=True)
        found = targets((r.Reason, one.with_(reasons=(r.Reason,))) for r in data.itertuples()
                        if r.Reason != analytics.NO_REASON)
        chart(fig, "reasons_sku_breakdown", found, data, f"reasons-of-{sku}")

    st.markdown("**Top products**" + (f" (money in {md_escape(currency)})" if currency else ""))
    by_money = rank_by_money("reasons_product_rank", currency)
    data = loaders.top_products(filters, currency, by_money, TOP_N)
    if data.empty:
        return
    column = "Refund requested" if by_money else "Returns"
    shown = data.iloc[::-1]
    fig = go.Figure(go.Bar(y=shown["Product"], x=numbers(shown[column]), orientation="h",
                           customdata=shown["Product"]))
    fig.update_layout(height=max(280, 28 * len(data) + 80),
                      xaxis={"title": column + (f" ({currency})" if by_money else "")})
    found = targets((r.Product, filters.with_(skus=tuple(r.SKUs))) for r in data.itertuples())
    chart(fig, "reasons_products", found, data, "top-products")
    money_table(data)


def money_table(data: pd.DataFrame) -> None:
    """The top products as a table, money exact."""
    money_format = st.column_config.NumberColumn(format="%.2f")
    st.dataframe(data, hide_index=True, key="reasons_products_table", column_config={
        "Refund requested": money_format, "Refund completed": money_format,
        "Top reason share": st.column_config.NumberColumn(format="percent"),
    })


def responsibility(filters: ReturnFilters, currency: str | None) -> None:
    """Who is at fault, read from the reason: Seller, Buyer, Logistics or Unknown."""
    st.subheader("Who is responsible")
    measure = measure_picker("reasons_resp_measure", currency)
    data = loaders.responsibility_split(filters, measure)
    if data.empty:
        st.info("No returns in this view.")
        return
    fig = go.Figure(go.Bar(x=data["Responsibility"], y=numbers(data[measure.column]), customdata=data["Responsibility"],
                           text=[f"{s:.0%}" for s in data["Share"]], textposition="auto"))
    fig.update_layout(height=300, yaxis={"title": measure.label})
    found = targets((r.Responsibility, filters.with_(reasons=tuple(r.Reasons))) for r in data.itertuples()
                    if r.Reasons)
    chart(fig, "reasons_responsibility", found, data, "responsibility")
    st.caption("Who is at fault, read from the reason: Seller (goods or listing), Buyer (their choice), "
               "Logistics (the carrier), Unknown (cannot be told). Returns without a reason text are counted "
               "but cannot be opened in the grid.")


def grouping(filters: ReturnFilters) -> None:
    """The reasons in view with their group and responsibility, and the rules that decided them."""
    st.subheader("How reasons are grouped")
    data = loaders.reason_frequency(filters)
    st.dataframe(data, hide_index=True, key="reasons_grouped", column_config={
        "Share": st.column_config.NumberColumn(format="percent"),
        "Cumulative Share": st.column_config.NumberColumn(format="percent")})
    st.download_button("CSV", csv_bytes(data), file_name="reasons-grouped.csv", mime="text/csv",
                       key="reasons_grouped_csv", on_click="ignore", icon=":material/download:")
    with st.expander("The grouping rules"):
        st.caption("A reason's code and text are lower-cased and split into words; the first rule whose phrase "
                   "appears decides its group and responsibility. No match: Other / Unknown. The rules live in "
                   "returns_core/reason_groups.py.")
        st.dataframe(pd.DataFrame(reason_groups.rules_table()), hide_index=True, key="reasons_rules")


# --- the page -------------------------------------------------------------------------------


def tabs(filters: ReturnFilters, currency: str | None, report: analytics.SpikeReport, names: dict[str, str]) -> None:
    """Trend, products, every spike check, and how reasons are grouped."""
    trend_tab, products_tab, spikes_tab, groups_tab = st.tabs(["Trend", "Products", "All spike checks", "Groups"])
    with trend_tab:
        trend(filters, currency)
    with products_tab:
        products(filters, currency)
    with spikes_tab:
        if report.rows.empty:
            st.info("No returns in the recent window.")
        else:
            spike_table(report, filters, report.rows, names, "reasons_spikes_all")
    with groups_tab:
        responsibility(filters, currency)
        grouping(filters)


def render() -> None:
    """Draw the page (or, after a drill-down click, open the grid on those returns)."""
    if (pending := st.session_state.pop(PENDING, None)) is not None:
        st.switch_page(GRID_PAGE, query_params=pending)

    st.title("Reason Analytics")
    current = scope()
    st.caption(f"{md_escape(current.selected.label if current.selected else ALL_ACCOUNTS)}: what drives returns, "
               "for which SKUs, and what it costs. Click a bar or cell (or use the box under a chart) to open "
               "those returns in the grid.")
    filters = page_filters(current)
    kpis = kpi_row(filters)
    if kpis.returns == 0:
        st.info("No returns in this view: widen the period or the filters, or sync the account.",
                icon=":material/filter_alt_off:")
        return
    currency = pick_currency(filters)

    left, right = st.columns(2)
    with left:
        pareto(filters, currency)
    with right:
        top_skus(filters, currency)
    names = {a.shop_id: a.name for a in current.accounts}
    coverage = loaders.rate_coverage(filters)
    return_rate(filters, coverage, names)
    report = spike_panel(filters, names, coverage.first_day is not None)
    tabs(filters, currency, report, names)


render()
