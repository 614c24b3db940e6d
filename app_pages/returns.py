"""Returns: one row per return, filtered, searched, sorted and paged in the database."""

import streamlit as st

from app_ui import filters
from app_ui.account_view import scope


def render() -> None:
    """Draw the page."""
    st.title("Returns")
    chosen = filters.filter_panel(scope(), prefix="returns")
    filters.returns_table(chosen, prefix="returns")


render()
