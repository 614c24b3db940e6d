"""Sync history: every sync run per account, newest first, paged in the database."""

import streamlit as st

from app_ui import loaders
from app_ui.account_view import scope
from app_ui.formatting import time_column

PAGE_SIZE = 50
PAGE_KEY = "history_page"


def render() -> None:
    """Draw the page."""
    st.title("Sync history")
    current = scope()
    st.caption("Runs of the account(s) in the Account View: from Sync Returns, auto-sync and the command line.")
    total = loaders.sync_run_count(current.shop_ids)
    pages = max(1, -(-total // PAGE_SIZE))
    if st.session_state.get(PAGE_KEY, 1) > pages:
        st.session_state[PAGE_KEY] = 1
    table_slot = st.container()
    page_number = st.pagination(pages, key=PAGE_KEY)
    runs = loaders.sync_runs_page(current.shop_ids, PAGE_SIZE, (page_number - 1) * PAGE_SIZE)
    with table_slot:
        if total == 0:
            st.info("No sync has run yet: press **Sync Returns** in the sidebar.", icon=":material/sync:")
        else:
            st.caption(f"{total:,} runs")
            st.dataframe(runs, hide_index=True, key="history_runs", column_config={
                "Started": time_column(),
                "Duration (s)": st.column_config.NumberColumn(format="%.1f"),
                "Full": st.column_config.CheckboxColumn(help="A full sync re-reads everything"),
            })


render()
