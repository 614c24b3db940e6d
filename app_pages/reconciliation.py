"""Reconciliation: every mismatch and unmapped status, with one-click re-sync from TikTok."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from app_ui import identity, loaders, runtime, widgets
from app_ui.account_view import scope
from app_ui.formatting import md_escape
from app_ui.navigation import DETAIL_PAGE
from returns_core import domain, review
from returns_core.filters import FilterError
from returns_core.review import ResyncOutcome

PAGE_SIZE = 25  # one button per row: keep the page short
PAGE_KEY = "rc_page"


def _resync(keys: list[review.Key]) -> None:
    """Re-sync and keep the outcome for the next run (the list changes under the user)."""
    with st.spinner(f"Re-syncing {len(keys)} return(s) from TikTok…"):
        results = review.resync_returns(runtime.db(), keys)
    st.session_state["rc_results"] = results
    runtime.data_changed()
    st.rerun()


def _show_results() -> None:
    """What the last re-sync did: a summary, and each return's outcome in words."""
    results: list[review.ResyncResult] = st.session_state.pop("rc_results", [])
    if not results:
        return
    failed = [r for r in results if r.outcome is ResyncOutcome.FAILED]
    fixed = sum(1 for r in results if r.outcome is ResyncOutcome.FIXED)
    summary = f"Re-synced {len(results) - len(failed)} of {len(results)}; {fixed} no longer flagged."
    (st.warning if failed else st.success)(summary)
    with st.expander("Details", expanded=len(results) == 1 or bool(failed)):
        for r in results:
            st.markdown(f"{'✅' if r.ok else '❌'} {md_escape(r.return_id, code=True)} ({md_escape(r.shop_id)}): "
                        f"{md_escape(r.message)}")


def _detail_link(row: pd.Series) -> None:
    """A link to the return's detail page."""
    try:
        st.page_link(DETAIL_PAGE, label="Open", icon=":material/open_in_new:",
                     query_params={"id": row["Marketplace Return ID"], "shop": row["Account ID"]})
    except StreamlitPageNotFoundError:  # a page run on its own, without the app's page registry
        st.caption("—")


_WIDTHS = [3, 3, 6, 2, 1]


def _text(value: object, empty: str) -> str:
    """A text cell, or `empty` when there is none."""
    # pandas hands missing text back as NaN, which is truthy
    return value if isinstance(value, str) and value else empty


def _render_rows(frame: pd.DataFrame, blocked: bool) -> None:
    """One line per flagged return, with its problem and a Re-sync button."""
    header = st.columns(_WIDTHS)
    for col, title in zip(header, ("Return / account", "Status / TikTok's status", "Problem"), strict=False):
        col.markdown(f"**{title}**")
    for _, row in frame.iterrows():
        cols = st.columns(_WIDTHS, vertical_alignment="center")
        cols[0].markdown(f"{md_escape(row['Marketplace Return ID'], code=True)}  \n"
                         f":gray[{md_escape(row['Account ID'])} · {md_escape(_text(row['Type'], '-'))}]")
        cols[1].markdown(f"{_text(row['Status'], 'unmapped')}  \n"
                         f":gray[{md_escape(_text(row['Marketplace Status'], '-'))}]")
        cols[2].markdown(md_escape(row["Problem"]))
        if cols[3].button("Re-sync", key=f"rc_resync_{row['Account ID']}_{row['Marketplace Return ID']}",
                          disabled=blocked, icon=":material/sync:"):
            _resync([(row["Account ID"], row["Marketplace Return ID"])])
        with cols[4]:
            _detail_link(row)


def render() -> None:
    """Draw the page."""
    st.title("Reconciliation")
    st.caption("Returns whose Status disagrees with TikTok's status (**mismatch**), or whose TikTok status is "
               "not in the mapping (**unmapped**). Re-sync asks TikTok for the return again; a mismatch that "
               "remains is fixed by moving Status by hand on the return's page.")
    why = identity.block_reason(identity.current_actor(), identity.current_permissions(), need_actor=False)
    _show_results()

    filters = review.reconciliation_filters(scope().shop_ids)
    counts = loaders.flag_counts(filters)
    m1, m2 = st.columns(2)
    m1.metric("Mismatches", f"{counts.mismatch:,}")
    m2.metric("Unmapped statuses", f"{counts.unmapped:,}")
    with st.expander("Status mapping (TikTok return_status → Status)"):
        st.dataframe(pd.DataFrame(list(domain.STATUS_MAP.items()), columns=["TikTok return_status", "Status"]),
                     hide_index=True, key="rc_mapping")
    with st.expander("Cancellation status mapping (TikTok cancel_status → Status)"):
        st.dataframe(pd.DataFrame(list(domain.CANCELLATION_STATUS_MAP.items()),
                                  columns=["TikTok cancel_status", "Status"]), hide_index=True, key="rc_cancel_mapping")
    if not counts.total:
        st.success("Nothing to reconcile: every Status agrees with TikTok, and every TikTok status is mapped.",
                   icon=":material/done_all:")
        return
    if why:
        st.info(why, icon=":material/lock:")

    limit = min(counts.total, review.RESYNC_LIMIT)
    label = f"Re-sync all listed ({limit:,})" if limit == counts.total else f"Re-sync the first {limit:,}"
    if st.button(label,
                 key="rc_resync_all", disabled=bool(why), icon=":material/sync:",
                 help=f"At most {review.RESYNC_LIMIT} at a time, in the order listed: each is one call to TikTok."):
        _resync(loaders.flagged_keys(filters, review.RESYNC_LIMIT))

    page = widgets.page_number(counts.total, PAGE_SIZE, PAGE_KEY)
    try:
        frame = loaders.reconciliation_page(filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    except FilterError as exc:
        st.error(md_escape(exc))
        return
    _render_rows(frame, bool(why))


render()
