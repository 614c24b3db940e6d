"""Small pieces the forms and lists share: a return's key, messages kept across a rerun, a pager,
the Sync Returns button.

Session keys of the return forms start with "wf_".
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app_ui import identity, runtime
from app_ui.account_view import scope
from app_ui.formatting import md_escape
from returns_core import roles

WATCHED_KEY = "sidebar_watched"  # the syncs this session started: each gets a toast when it ends


def return_key(return_row: Mapping) -> tuple[str, str]:
    """(shop_id, return_id) from a store row or a grid row (display names)."""
    shop_id = return_row.get("shop_id") or return_row.get("Account ID")
    return_id = return_row.get("return_id") or return_row.get("Marketplace Return ID")
    if not shop_id or not return_id:
        raise ValueError("The return row needs shop_id and return_id (or Account ID and Marketplace Return ID).")
    return str(shop_id), str(return_id)


def form_key(kind: str, shop_id: str, return_id: str) -> str:
    """The session-key prefix of one form of one return."""
    return f"wf_{kind}_{shop_id}_{return_id}"


def flash(key: str, kind: str, text: str) -> None:
    """Keep a message for the next run (a rerun follows every change so the page shows fresh data)."""
    st.session_state[f"{key}_flash"] = (kind, text)


def show_flash(key: str) -> None:
    """Show (once) the message kept by `flash`."""
    kind, text = st.session_state.pop(f"{key}_flash", (None, None))
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind == "info":
        st.info(text)
    elif kind == "error":
        st.error(text)


def changed() -> None:
    """After a change: reload cached data and redraw."""
    runtime.data_changed()
    st.rerun()


def page_number(total: int, page_size: int, key: str) -> int:
    """A 1-based page picker (shown only when there is more than one page), kept within range."""
    pages = max(1, -(-total // page_size))
    if pages == 1:
        return 1
    # the list may have shrunk (a sign-off, a re-sync): a number past the end would be refused
    if st.session_state.get(key, 1) > pages:
        st.session_state[key] = pages
    return int(st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=key))


def start_sync() -> None:
    """Start a background sync of every usable account in view (the Sync Returns button)."""
    started = runtime.current().jobs.start(scope().usable, trigger="app")
    st.session_state.setdefault(WATCHED_KEY, set()).update(job.id for job in started)


def sync_button(where, *, key: str, running: bool, kind: str = "primary", width: str = "stretch") -> None:
    """Sync Returns: the sidebar's, and the one at the top of the Returns page on a phone (same rules).

    `running`: a sync of an account in view runs now (from the caller's one reading of the jobs).
    """
    chosen = scope()
    help_text = "Sync every active account" if chosen.selected is None else f"Sync {md_escape(chosen.selected.name)}"
    if not chosen.usable:
        help_text = "No active account in view: connect, reconnect or enable one on the Accounts page."
    may_sync = roles.ACT in identity.current_permissions()
    where.button("Sync Returns", key=key, type=kind, icon=":material/sync:", width=width, on_click=start_sync,
                 disabled=not chosen.usable or running or not may_sync, help=help_text)
