"""Refunds: refund requests (Refund, Return & Refund) and the money, per currency."""

import plotly.graph_objects as go
import streamlit as st

from app_pages import _common as common
from app_pages import _filters
from returns_core import filters as return_filters

st.title("Refunds")
st.caption("Refund requests (types Refund and Return & Refund): requested, accepted and completed amounts.")
current = common.scope()
filters = _filters.filter_panel(current, prefix="refunds", types=return_filters.REFUND_TYPES,
                                narrow=return_filters.refund_filters)
summary = common.load_refund_summary(common.data_version(), filters)

if summary.empty:
    st.info("No refund requests match these filters.", icon=":material/filter_alt_off:")
else:
    st.subheader("Totals by currency")
    for _, row in summary.head(4).iterrows():
        cols = st.columns(4)
        cols[0].metric(f"Requested ({row['Currency']})", f"{row['Requested']:,.2f}",
                       help=f"{row['Requests']:,} refund requests")
        cols[1].metric(f"Accepted ({row['Currency']})", f"{row['Accepted']:,.2f}",
                       help=f"{row['Accepted Requests']:,} requests with Status Accepted")
        cols[2].metric(f"Completed ({row['Currency']})", f"{row['Completed']:,.2f}",
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
        column_config={name: st.column_config.NumberColumn(format="%.2f")
                       for name in ("Requested", "Accepted", "Completed", "Subtotal", "Shipping", "Tax")},
    )
    st.caption("Requested: every request; Accepted: Status Accepted; Completed: Status Refund. "
               "Subtotal, Shipping and Tax break down the requested amount.")

st.subheader("Refund requests")
_filters.returns_table(filters, prefix="refunds", noun="refund requests")
