"""Refunds: refund requests (Refund, Return & Refund) and the money, per currency."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_ui import filters, loaders
from app_ui.account_view import scope
from app_ui.formatting import md_escape
from app_ui.navigation import REFUNDS_PAGE
from returns_core import filters as return_filters

MONEY_COLUMNS = ("Requested", "Accepted", "Completed", "Subtotal", "Shipping", "Tax")


def totals(summary: pd.DataFrame) -> None:
    """Requested, accepted and completed money per currency (the first four currencies), with a chart and table."""
    st.subheader("Totals by currency")
    for _, row in summary.head(4).iterrows():
        cols = st.columns(4)
        currency = md_escape(row["Currency"])  # from TikTok; metric labels are Markdown
        cols[0].metric(f"Requested ({currency})", f"{row['Requested']:,.2f}",
                       help=f"{row['Requests']:,} refund requests")
        cols[1].metric(f"Accepted ({currency})", f"{row['Accepted']:,.2f}",
                       help=f"{row['Accepted Requests']:,} requests with Status Accepted")
        cols[2].metric(f"Completed ({currency})", f"{row['Completed']:,.2f}",
                       help=f"{row['Completed Requests']:,} requests with Status Refund")
        cols[3].metric("Requests", f"{row['Requests']:,}")
    chart = go.Figure()
    for measure in ("Requested", "Accepted", "Completed"):
        chart.add_bar(name=measure, x=summary["Currency"], y=summary[measure].astype(float))
    chart.update_layout(barmode="group", height=320, margin={"t": 30, "b": 10}, yaxis_title="Amount",
                        legend={"orientation": "h"})
    st.plotly_chart(chart, key="refunds_chart")
    st.dataframe(
        summary, hide_index=True, key="refunds_summary",
        column_config={name: st.column_config.NumberColumn(format="%.2f") for name in MONEY_COLUMNS},
    )
    st.caption("Requested: every request; Accepted: Status Accepted; Completed: Status Refund. "
               "Subtotal, Shipping and Tax break down the requested amount.")


def render() -> None:
    """Draw the page."""
    st.title("Refunds")
    st.caption("Refund requests (types Refund and Return & Refund): requested, accepted and completed amounts.")
    current = scope()
    view = filters.filter_panel(current, prefix="refunds", types=return_filters.REFUND_TYPES,
                                narrow=return_filters.refund_filters, page_file=REFUNDS_PAGE,
                                noun="refund requests")
    summary = loaders.refund_summary(view.filters)
    if summary.empty:
        st.info("No refund requests match these filters.", icon=":material/filter_alt_off:")
    else:
        totals(summary)
    st.subheader("Refund requests")
    filters.returns_table(view, current, prefix="refunds", noun="refund requests", came_from="refunds")


render()
