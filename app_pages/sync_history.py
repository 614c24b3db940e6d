"""Sync history: every sync run per account, newest first, paged in the database."""

import streamlit as st

from app_pages import _common as common
from returns_core.store import sync_runs

st.title("Sync history")
current = common.scope()
st.caption("Runs of the account(s) in the Account View: from Sync Returns, auto-sync and the command line.")
database = common.db()
total = sync_runs.count(database, current.shop_ids)
size = 50
pages = max(1, -(-total // size))
if st.session_state.get("history_page", 1) > pages:
    st.session_state["history_page"] = 1
table_slot = st.container()
page_number = st.pagination(pages, key="history_page")
runs = sync_runs.page(database, current.shop_ids, limit=size, offset=(page_number - 1) * size)
with table_slot:
    if total == 0:
        st.info("No sync has run yet: press **Sync Returns** in the sidebar.", icon=":material/sync:")
    else:
        st.caption(f"{total:,} runs")
        st.dataframe(runs, hide_index=True, key="history_runs", column_config={
            "Started": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss", help="UTC"),
            "Duration (s)": st.column_config.NumberColumn(format="%.1f"),
            "Full": st.column_config.CheckboxColumn(help="A full sync re-reads everything"),
        })
