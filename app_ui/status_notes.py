"""A return's own workflow: move Status by hand, add a note, and show our history.

UI only: the rules and the writes live in returns_core.workflow. The forms read the return fresh
from the store (a change acts on the return as it is now); the history is a cached loader.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app_ui import identity, loaders, widgets
from returns_core import domain, review, workflow
from returns_core.store import returns
from returns_core.store.db import Database


def render_status_change(db: Database, return_row: Mapping, actor: str | None = None,
                         permissions: frozenset[str] | None = None) -> None:
    """Move Status by hand along the allowed steps (closing needs TikTok's status to agree)."""
    actor, permissions = identity.resolve(actor, permissions)
    shop_id, return_id = widgets.return_key(return_row)
    key = widgets.form_key("status", shop_id, return_id)
    widgets.show_flash(key)
    row = returns.find_return(db, return_id, shop_id)
    if row is None:
        st.warning(f"Return {return_id} is not in the store.")
        return
    current = row["status"]
    if domain.is_closed(current):
        st.caption(f"The case is closed ({current}); Status now changes only when TikTok's status does.")
        return
    steps = domain.ALLOWED_TRANSITIONS.get(current, ()) if current else domain.STATUSES
    why = identity.block_reason(actor, permissions)
    if why:
        st.info(why, icon=":material/lock:")
    with st.form(key, border=False):
        target = st.selectbox(f"Move Status from {current or 'unmapped'} to", steps, key=f"{key}_target",
                              disabled=bool(why))
        note = st.text_input("Why (optional)", key=f"{key}_note", disabled=bool(why),
                             max_chars=workflow.MAX_NOTE_LENGTH)
        submitted = st.form_submit_button("Change status", disabled=bool(why), icon=":material/swap_horiz:")
    if submitted and not why:
        try:
            workflow.change_status(db, shop_id, return_id, target, actor or "", note)
        except workflow.WorkflowError as exc:
            st.error(str(exc))
            return
        widgets.flash(key, "success", f"Status moved from {current} to {target}.")
        widgets.changed()


def render_note(db: Database, return_row: Mapping, actor: str | None = None,
                permissions: frozenset[str] | None = None) -> None:
    """Add a note to the return's history."""
    actor, permissions = identity.resolve(actor, permissions)
    shop_id, return_id = widgets.return_key(return_row)
    key = widgets.form_key("note", shop_id, return_id)
    widgets.show_flash(key)
    why = identity.block_reason(actor, permissions)
    if why:
        st.info(why, icon=":material/lock:")
    with st.form(key, border=False, clear_on_submit=True):
        text = st.text_area("Note", key=f"{key}_text", disabled=bool(why), max_chars=workflow.MAX_NOTE_LENGTH)
        submitted = st.form_submit_button("Add note", disabled=bool(why), icon=":material/note_add:")
    if submitted and not why:
        try:
            workflow.add_note(db, shop_id, return_id, actor or "", text)
        except workflow.WorkflowError as exc:
            st.error(str(exc))
            return
        widgets.flash(key, "success", "Note added.")
        widgets.changed()


def render_history(db: Database, shop_id: str, return_id: str) -> None:
    """Our own history of this return (newest first), with a CSV export."""
    frame = loaders.history(shop_id, return_id)
    if frame.empty:
        st.caption("No history yet.")
        return
    st.dataframe(frame, hide_index=True, key=widgets.form_key("history", shop_id, return_id), column_config={
        "When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    })
    st.download_button(
        "Export history (CSV)", data=lambda: review.history_csv(db, shop_id, return_id),
        file_name=f"history_{shop_id}_{return_id}.csv", mime="text/csv", on_click="ignore",
        key=widgets.form_key("history_csv", shop_id, return_id), icon=":material/download:",
    )
