"""Which accounts the user looks at: the sidebar's Account View (kept in the URL as ?account=)."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app_ui import loaders
from app_ui.formatting import md_escape
from app_ui.navigation import ACCOUNTS_PAGE
from returns_core.accounts import ACTIVE, INVALID, Account

ALL_ACCOUNTS = "All accounts"
ACCOUNT_KEY = "account"  # the sidebar's Account View, bound to ?account=
NO_ACCOUNT_TITLE = "No Active/Valid Accounts Found"


@dataclass(frozen=True)
class Scope:
    """Which accounts the user is looking at (Account View)."""

    accounts: tuple[Account, ...]  # every account
    selected: Account | None  # None = all accounts

    @property
    def shop_ids(self) -> tuple[str, ...]:
        """For filters: () means every account."""
        return (self.selected.shop_id,) if self.selected else ()

    @property
    def in_view(self) -> tuple[Account, ...]:
        """The accounts shown: the one selected, or all."""
        return (self.selected,) if self.selected else self.accounts

    @property
    def usable(self) -> tuple[Account, ...]:
        """The accounts in view that can sync now."""
        return tuple(a for a in self.in_view if a.status == ACTIVE)

    @property
    def any_usable(self) -> bool:
        """True when any account at all can sync now."""
        return any(a.status == ACTIVE for a in self.accounts)


def account_options(all_accounts: list[Account]) -> list[str]:
    """The Account View's choices: all accounts, then each by its label."""
    return [ALL_ACCOUNTS] + [a.label for a in all_accounts]


def scope() -> Scope:
    """The accounts in view, from the sidebar's Account View (also in the URL as ?account=)."""
    everyone = tuple(loaders.accounts())
    label = st.session_state.get(ACCOUNT_KEY, ALL_ACCOUNTS)
    selected = next((a for a in everyone if a.label == label), None)
    return Scope(everyone, selected)


def account_query() -> dict[str, str]:
    """The Account View as a query parameter, for links (st.page_link) that open a new view.

    Not for st.switch_page: the sidebar widget owns the bound `account` parameter and keeps it
    across a switch; passing it there raises StreamlitAPIException.
    """
    label = st.session_state.get(ACCOUNT_KEY)
    return {ACCOUNT_KEY: label} if label and label != ALL_ACCOUNTS else {}


def no_account_notice(current: Scope) -> None:
    """The empty state: why there is no usable account and where to fix it."""
    st.error(NO_ACCOUNT_TITLE, icon=":material/link_off:")
    st.markdown(
        "Returns can only be synced from a connected, active TikTok Shop account. This happens when:\n"
        "- **no shop is connected** yet (or the demo shop was turned off),\n"
        "- the shop's **authorization expired** or was revoked on TikTok (status *Expired* or *Invalid*),\n"
        "- the account is **disabled**."
    )
    for account in current.accounts:
        extra = f": {md_escape(account.auth_error)}" if account.auth_error and account.status == INVALID else ""
        st.caption(f"{md_escape(account.label)} is **{account.status}**{extra}")
    st.page_link(ACCOUNTS_PAGE, label="Connect or reconnect a shop on the Accounts page", icon=":material/store:")
