"""Returns: one row per return, filtered, searched, sorted and paged in the database."""

import streamlit as st

from app_pages import _common as common
from app_pages import _filters

st.title("Returns")
current = common.scope()
filters = _filters.filter_panel(current, prefix="returns")
_filters.returns_table(filters, prefix="returns")
