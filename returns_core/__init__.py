"""Returns Desk core: everything that is not UI. Never imports Streamlit."""
