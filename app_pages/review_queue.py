"""Review Queue: Accepted returns, oldest first, with age and Due By; managers sign them off."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_ui import decisions, identity, loaders, runtime, widgets
from app_ui import filters as grid_filters
from app_ui.account_view import scope
from app_ui.formatting import md_escape, time_column
from returns_core import domain, review, workflow
from returns_core.filters import FilterError

PAGE_SIZE = 50
GRID_KEY = "rq_grid"
OUTCOME_FILTER_KEY = "rq_outcomes"
PAGE_KEY = "rq_page"
OUTCOME_CHOICES: dict[str, str] = {review.NOT_SIGNED_OFF: review.NOT_SIGNED_OFF_LABEL, **domain.REVIEW_OUTCOMES}
_HIGHLIGHT = {grid_filters.OVERDUE: "background-color: rgba(255, 75, 75, 0.25)",
              grid_filters.DUE_SOON: "background-color: rgba(255, 164, 33, 0.25)"}


def _deadline_style(row: pd.Series) -> list[str]:
    """Overdue rows red, due-soon rows amber, on the deadline cells only."""
    style = _HIGHLIGHT.get(row["Deadline"], "")
    return [style if column in ("Due By", "Deadline") else "" for column in row.index]


def _clear_selection_when_view_changes(view: tuple) -> None:
    """Forget the selected rows when the list under them changed."""
    # selection holds row positions: after a filter, page or sign-off they would point at other returns
    if st.session_state.get("rq_view") != view or st.session_state.pop("rq_clear", False):
        st.session_state[GRID_KEY] = {"selection": {"rows": [], "columns": [], "cells": []}}
    st.session_state["rq_view"] = view


def _sign_off_form(selected: pd.DataFrame, actor: str | None, permissions: frozenset[str]) -> None:
    """Sign the selected returns off together, with one outcome and an optional note."""
    why = identity.block_reason(actor, permissions, need_actor=False)
    if why:
        st.info(why, icon=":material/lock:")
    elif not actor:
        actor = identity.ask_name("rq_signoff")  # asked here, where the sign-off happens
        why = None if actor else "no name yet"
    count = len(selected)
    with st.form("rq_signoff", border=True):
        st.markdown(f"**Sign off {count} selected return(s)**" if count else
                    "**Sign off**: select rows in the queue (tick boxes on the left) to sign them off together.")
        outcome = st.radio("Outcome", list(domain.REVIEW_OUTCOMES), key="rq_outcome", horizontal=True,
                           format_func=domain.REVIEW_OUTCOMES.get, disabled=bool(why))
        note = st.text_area("Note (optional)", key="rq_note", disabled=bool(why), max_chars=2000)
        submitted = st.form_submit_button("Sign off selected", type="primary", disabled=bool(why) or not count,
                                          icon=":material/task_alt:")
    if not submitted or why:
        return
    keys = list(zip(selected["Account ID"], selected["Marketplace Return ID"], strict=True))
    try:
        done = workflow.sign_off(runtime.db(), keys, outcome, actor or "", note)
    except workflow.WorkflowError as exc:
        st.error(md_escape(exc))
        return
    st.session_state["rq_flash"] = f"Signed off {done} return(s) as {domain.REVIEW_OUTCOMES[outcome]}."
    st.session_state["rq_clear"] = True
    runtime.data_changed()
    st.rerun()


def render() -> None:
    """Draw the page."""
    st.title("Review Queue")
    st.caption("Accepted returns, oldest first. Sign each off with an outcome once reviewed; the history "
               "records who signed off and when.")
    shop_ids = scope().shop_ids
    actor, permissions = identity.current_actor(), identity.current_permissions()
    if flash := st.session_state.pop("rq_flash", None):
        st.success(flash, icon=":material/check_circle:")

    outcomes = st.multiselect("Outcome", list(OUTCOME_CHOICES), default=[review.NOT_SIGNED_OFF],
                              key=OUTCOME_FILTER_KEY, format_func=OUTCOME_CHOICES.get,
                              placeholder="Any outcome", help="Empty shows every Accepted return.")
    filters = review.queue_filters(shop_ids, outcomes)
    now = loaders.this_minute()
    counts = loaders.queue_counts(filters, now)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("In the queue", f"{counts.total:,}")
    m2.metric("Not signed off", f"{counts.not_signed_off:,}")
    m3.metric("Overdue", f"{counts.overdue:,}")
    m4.metric(f"Due within {domain.DUE_SOON_HOURS} h", f"{counts.due_soon:,}")
    if not counts.total:
        st.info("Nothing to review with these filters.", icon=":material/inbox:")
        return

    page = widgets.page_number(counts.total, PAGE_SIZE, PAGE_KEY)
    _clear_selection_when_view_changes((shop_ids, tuple(outcomes), page))
    try:
        frame = loaders.queue_page(filters, PAGE_SIZE, (page - 1) * PAGE_SIZE, now)
    except FilterError as exc:
        st.error(md_escape(exc))
        return
    frame["Deadline"] = [grid_filters.DEADLINE_MARKS.get(d, d) for d in frame["Deadline"]]
    card_slot = st.container()  # above the list, where the eye is when a row is ticked
    event = st.dataframe(
        frame.style.apply(_deadline_style, axis=1), key=GRID_KEY, on_select="rerun", selection_mode="multi-row",
        hide_index=True, column_config={
            "Refund Total": st.column_config.NumberColumn(format="%.2f"),
            "Created At": time_column(),
            "Due By": time_column(help="TikTok's deadline for the seller."),
            "Signed Off At": time_column(),
            "Age": st.column_config.TextColumn(help="Time since the buyer's request (Created At)"),
        })
    rows = [r for r in event.selection.rows if 0 <= r < len(frame)]
    selected = frame.iloc[rows]
    st.caption(f"Rows {(page - 1) * PAGE_SIZE + 1}–{(page - 1) * PAGE_SIZE + len(frame)} of {counts.total:,}.")
    with card_slot:  # one selected: its card (what the buyer asked, why, their photos) to review it by
        decisions.decide_selected(runtime.db(), loaders.accounts(), frame, rows if len(rows) == 1 else [],
                                  place="rq")
    _sign_off_form(selected, actor, permissions)


render()
