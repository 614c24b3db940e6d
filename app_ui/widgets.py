"""Small pieces the forms and lists share: a return's key, messages kept across a rerun, a pager.

Session keys of the return forms start with "wf_".
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from app_ui import runtime


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
