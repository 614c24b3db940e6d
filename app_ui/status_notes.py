"""A return's own workflow: move Status by hand, add a note, and show our history; and the note
that TikTok dates the return in the future.

UI only: the rules and the writes live in returns_core.workflow. The forms read the return fresh
from the store (a change acts on the return as it is now); the history is a cached loader.
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app_ui import identity, loaders, widgets
from app_ui.formatting import local_time, md_escape, time_column
from returns_core import domain, ingest, review, workflow
from returns_core.store import returns
from returns_core.store.db import Database, utcnow


def render_future_note(return_row: Mapping) -> None:
    """Say so when TikTok dates the return's last update in the future (ingest.FUTURE_MARGIN_S)."""
    updated_at = return_row.get("updated_at")
    if ingest.from_the_future(updated_at, utcnow()):
        st.warning(f"From the future: TikTok dates this return's last update {local_time(updated_at)}, more than "
                   f"{ingest.FUTURE_MARGIN_S // 60} minutes after this computer's clock. It is kept as TikTok sent "
                   "it, but syncs do not count it as progress. If many returns show this, check this computer's "
                   "clock.", icon=":material/update:")


def render_status_change(db: Database, return_row: Mapping, actor: str | None = None,
                         permissions: frozenset[str] | None = None) -> None:
    """Move Status by hand along the allowed steps (closing needs TikTok's status to agree)."""
    actor, permissions = identity.resolve(actor, permissions)
    shop_id, return_id = widgets.return_key(return_row)
    key = widgets.form_key("status", shop_id, return_id)
    widgets.show_flash(key)
    row = returns.find_return(db, return_id, shop_id)
    if row is None:
        st.warning(f"Return {md_escape(return_id)} is not in the store.")
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
            st.error(md_escape(exc))
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
            st.error(md_escape(exc))
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
        "When (UTC)": time_column("When"),  # the export keeps UTC; the screen shows the viewer's zone
    })
    st.download_button(
        "Export history (CSV)", data=lambda: review.history_csv(db, shop_id, return_id),
        file_name=f"history_{shop_id}_{return_id}.csv", mime="text/csv", on_click="ignore",
        key=widgets.form_key("history_csv", shop_id, return_id), icon=":material/download:",
    )
