"""Accounts: connect TikTok shops (tokens or OAuth code), reconnect, test, disable; the demo shop."""

import secrets as pysecrets
from datetime import datetime

import pandas as pd
import streamlit as st

from app_ui import identity, loaders, runtime
from app_ui.formatting import md_escape, time_column
from app_ui.navigation import SYNC_HISTORY_PAGE
from returns_core import accounts as accounts_core
from returns_core import config, connect, demo, roles, webhooks
from returns_core.accounts import Account
from returns_core.explain import explain_connect, explain_error
from returns_core.store import settings

FLASH_KEY = "accounts_flash"


def _done(message: str, ok: bool = True) -> None:
    """Remember the outcome for the next run, refresh cached data, redraw."""
    st.session_state[FLASH_KEY] = ("ok" if ok else "error", message)
    runtime.data_changed()


def _forget(*keys: str) -> None:
    """Drop what was typed into a form (secrets above all) from the session once it was used."""
    for key in keys:
        st.session_state.pop(key, None)


# What each connect form holds. After a connect, it is cleared; after a failure, it is kept, so
# the user fixes the one field the error names instead of typing everything again.
TOKEN_FIELDS = ("accounts_add_name", "accounts_add_app_key", "accounts_add_app_secret", "accounts_add_access",
                "accounts_add_refresh", "accounts_add_cipher", "accounts_add_api_base", "accounts_add_auth_base")
OAUTH_FIELDS = ("accounts_oauth_name", "accounts_oauth_app_key", "accounts_oauth_app_secret", "accounts_oauth_code",
                "accounts_oauth_api_base", "accounts_oauth_auth_base")
RECONNECT_FIELDS = ("accounts_re_app_key", "accounts_re_app_secret", "accounts_re_code", "accounts_re_access",
                    "accounts_re_refresh")


def _connected(added: list[Account], typed_name: str, before: set[str]) -> str:
    """The success message: who is connected, and which shop was renewed rather than added."""
    said = "Connected: " + ", ".join(a.label for a in added) + ". Press Sync Returns to load its returns."
    renewed = [a.name for a in added if a.shop_id in before and not a.name.startswith(typed_name.strip())]
    if renewed:
        said += (f" {', '.join(renewed)} was already connected: it now uses this new authorization "
                 "(the name typed was not used).")
    return said


def show_flash() -> None:
    """The outcome of the last change, once."""
    if flash := st.session_state.pop(FLASH_KEY, None):
        kind, text = flash
        # the outcome names accounts and addresses, and repeats what TikTok said: shown as text
        (st.success if kind == "ok" else st.error)(md_escape(text))


def account_list(all_accounts: list[Account], last_syncs: dict[str, datetime]) -> None:
    """Every account with its status, token expiry and last sync."""
    if not all_accounts:
        st.warning("No account is connected yet: add one below.", icon=":material/store:")
        return
    table = pd.DataFrame([{
        "Name": a.name,
        "Account ID": a.shop_id,
        "Shop": a.shop_name,
        "Region": a.region,
        "Status": a.status,
        "Sandbox": a.is_sandbox,
        "Access token expires": a.access_token_expires_at,
        "Refresh token expires": a.refresh_token_expires_at,
        "Last sync": last_syncs.get(a.shop_id),
        "Problem": a.auth_error if a.status == accounts_core.INVALID else None,
    } for a in all_accounts])
    when = time_column()
    st.dataframe(table, hide_index=True, key="accounts_table", column_config={
        "Access token expires": when, "Refresh token expires": when, "Last sync": when,
        "Sandbox": st.column_config.CheckboxColumn(help="Backed by the built-in TikTok Shop simulator"),
    })
    st.caption("**Active**: ready to sync. **Expired**: the authorization ran out; reconnect. "
               "**Invalid**: TikTok refused the tokens; reconnect. **Disabled**: turned off here; enable it.")
    st.page_link(SYNC_HISTORY_PAGE, label="Sync history", icon=":material/history:")


def manage(all_accounts: list[Account], may_manage: bool) -> None:
    """One account: test its connection, disable or enable it, reconnect it."""
    st.subheader("Manage an account")
    labels = [a.label for a in all_accounts]
    chosen_label = st.selectbox("Account", labels, key="accounts_pick")
    chosen = all_accounts[labels.index(chosen_label)]
    st.markdown(f"Status: **{chosen.status}**" + (" · :orange-badge[SANDBOX]" if chosen.is_sandbox else ""))
    b1, b2 = st.columns(2)
    if b1.button("Test connection", key="accounts_test", icon=":material/network_check:",
                 disabled=not may_manage or not chosen.enabled):
        with st.spinner("Asking TikTok..."):
            try:
                outcome = connect.test_connection(runtime.db(), chosen)
                said, ok = outcome.summary, outcome.ok
            except Exception as exc:  # noqa: BLE001 - shown as one line
                said, ok = f"Failed: {explain_error(exc)}", False
        _done(said, ok=ok)
        st.rerun()
    toggle_label = "Disable" if chosen.enabled else "Enable"
    if b2.button(toggle_label, key="accounts_enable", icon=":material/power_settings_new:", disabled=not may_manage):
        accounts_core.set_enabled(runtime.db(), chosen.shop_id, not chosen.enabled)
        _done(f"{chosen.name} is now {'disabled' if chosen.enabled else 'enabled'}.")
        st.rerun()
    reconnect(chosen, may_manage)
    webhook_address(chosen, may_manage)


def webhook_address(chosen: Account, may_manage: bool) -> None:
    """Where TikTok sends this shop's webhooks: asked of TikTok on request, and set through its API."""
    from streamlit import config as st_config

    with st.expander("Webhook address: TikTok's changes in seconds, without Sync"):
        st.markdown("TikTok sends this shop's return changes, a revoked authorization and an authorization about "
                    "to expire to one address, and the app re-reads what changed. **TikTok only delivers to a "
                    "public HTTPS address**: `https://`, a domain name, no port (put this app behind a reverse "
                    "proxy or tunnel that forwards to `/webhooks/tiktok` here)."
                    + (" The sandbox also accepts `http://127.0.0.1:PORT/...` on this machine."
                       if webhooks.address_problem(chosen, "http://127.0.0.1:1/") is None else ""))
        here = webhooks.local_address(st_config.get_option("server.port"), st_config.get_option("server.address"),
                                      https=bool(st_config.get_option("server.sslCertFile")))
        receiving = webhooks.live_inbox(runtime.db().path) is not None
        st.caption(f"This app receives webhooks at `{here}` (on this machine)." if receiving else
                   "This app was started without the webhook receiver: start it with `bash run.sh`.")
        if st.button("Ask TikTok where this shop's webhooks go", key="accounts_webhook_ask",
                     icon=":material/travel_explore:", disabled=not chosen.enabled):
            try:
                listed = webhooks.subscription(runtime.db(), chosen)
                st.session_state["accounts_webhooks"] = (chosen.shop_id, listed.addresses)
            except Exception as exc:  # noqa: BLE001 - shown as one line
                st.error(f"TikTok could not be asked: {md_escape(explain_error(exc))}")
        asked = st.session_state.get("accounts_webhooks")
        if asked and asked[0] == chosen.shop_id:
            topics = list(webhooks.HANDLED_TOPICS) + sorted(set(asked[1]) - set(webhooks.HANDLED_TOPICS))
            st.dataframe(pd.DataFrame({"Event": topics, "Address": [asked[1].get(t, "not set") for t in topics]}),
                         hide_index=True, key="accounts_webhook_table")
        with st.form("accounts_webhook_form"):
            local = webhooks.address_problem(chosen, here) is None
            address = st.text_input("Webhook address", value=here if local and receiving else "",
                                    placeholder="https://desk.example.com/webhooks/tiktok", key="accounts_webhook_to")
            set_col, stop_col = st.columns(2)
            send_here = set_col.form_submit_button("Send this shop's events here", disabled=not may_manage)
            stop = stop_col.form_submit_button("Stop this shop's events", disabled=not may_manage)
        if send_here:
            problem = webhooks.address_problem(chosen, address)
            if problem:
                st.error(md_escape(problem))
                return
            try:
                listed = webhooks.subscribe(runtime.db(), chosen, address)
                _done(f"TikTok now sends {chosen.name}'s events to {address.strip()}.")
                st.session_state["accounts_webhooks"] = (chosen.shop_id, listed.addresses)
            except Exception as exc:  # noqa: BLE001 - shown as one line
                _done(f"The webhook address was not set: {explain_error(exc)}", ok=False)
            st.rerun()
        if stop:
            try:
                listed = webhooks.unsubscribe(runtime.db(), chosen)
                _done(f"TikTok no longer sends {chosen.name}'s events here.")
                st.session_state["accounts_webhooks"] = (chosen.shop_id, listed.addresses)
            except Exception as exc:  # noqa: BLE001 - shown as one line
                _done(f"The webhook address was not removed: {explain_error(exc)}", ok=False)
            st.rerun()


def reconnect(chosen: Account, may_manage: bool) -> None:
    """New tokens or an authorization code for an account that exists."""
    with st.expander("Reconnect with new tokens or an authorization code"):
        st.caption("Use this when the status is Expired or Invalid, or the seller re-authorized the app.")
        with st.form("accounts_reconnect_form"):
            app_key = st.text_input("App key", value=chosen.app_key, key="accounts_re_app_key")
            app_secret = st.text_input("App secret", type="password", key="accounts_re_app_secret")
            auth_code = st.text_input("Authorization code (or leave empty and paste tokens)", type="password",
                                      key="accounts_re_code")
            access = st.text_input("Access token", type="password", key="accounts_re_access")
            refresh = st.text_input("Refresh token", type="password", key="accounts_re_refresh")
            submitted = st.form_submit_button("Reconnect", disabled=not may_manage)
        if not submitted:
            return
        try:
            if auth_code:
                connect.add_accounts_with_auth_code(
                    runtime.db(), chosen.name, app_key, app_secret, auth_code, shop_cipher=chosen.shop_cipher,
                    api_base=chosen.api_base, auth_base=chosen.auth_base, is_sandbox=chosen.is_sandbox)
            else:
                connect.add_accounts_with_tokens(
                    runtime.db(), chosen.name, app_key, app_secret, access, refresh or None,
                    shop_cipher=chosen.shop_cipher, api_base=chosen.api_base, auth_base=chosen.auth_base,
                    is_sandbox=chosen.is_sandbox)
        except Exception as exc:  # noqa: BLE001 - shown as one line; what was typed stays for a retry
            _done(f"Reconnect failed: {explain_connect(exc)}", ok=False)
        else:
            _done(f"{chosen.name} is reconnected.")
            _forget(*RECONNECT_FIELDS)
        st.rerun()


def connect_with_tokens(may_manage: bool) -> None:
    """A new shop from an app key, its secret and pasted tokens."""
    with st.form("accounts_add_tokens"):
        name = st.text_input("Account name", key="accounts_add_name", placeholder="e.g. Main shop")
        app_key = st.text_input("App key", key="accounts_add_app_key")
        app_secret = st.text_input("App secret", type="password", key="accounts_add_app_secret")
        access = st.text_input("Access token", type="password", key="accounts_add_access")
        refresh = st.text_input("Refresh token", type="password", key="accounts_add_refresh")
        cipher = st.text_input("Shop cipher (optional: only this shop)", key="accounts_add_cipher")
        api_base = st.text_input("API base", value=config.DEFAULT_API_BASE, key="accounts_add_api_base")
        auth_base = st.text_input("Auth base", value=config.DEFAULT_AUTH_BASE, key="accounts_add_auth_base")
        submitted = st.form_submit_button("Connect", disabled=not may_manage)
    if not submitted:
        return
    before = {a.shop_id for a in loaders.accounts()}
    try:
        added = connect.add_accounts_with_tokens(
            runtime.db(), name, app_key, app_secret, access, refresh or None, shop_cipher=cipher.strip() or None,
            api_base=api_base.strip(), auth_base=auth_base.strip(), new_account=True)
    except Exception as exc:  # noqa: BLE001 - shown as one line; what was typed stays for a retry
        _done(f"Could not connect: {explain_connect(exc)}", ok=False)
    else:
        _done(_connected(added, name, before))
        _forget(*TOKEN_FIELDS)
    st.rerun()


def connect_with_oauth(may_manage: bool) -> None:
    """A new shop through TikTok's authorization page: open the link, paste the code it returns."""
    st.markdown("1. Enter your app's **service ID** and open the authorization link; the seller approves the app "
                "and TikTok redirects to your callback with a `code`.  \n2. Paste that code below.")
    o1, o2 = st.columns([2, 1])
    service_id = o1.text_input("Service ID", key="accounts_oauth_service_id")
    us_shop = o2.checkbox("US shop", key="accounts_oauth_us")
    if service_id.strip():
        state = st.session_state.setdefault("accounts_oauth_state", pysecrets.token_urlsafe(12))
        url = connect.authorize_url(service_id.strip(), state, us=us_shop)
        st.link_button("Open the TikTok authorization page", url, icon=":material/open_in_new:")
        st.code(url, language=None)
    with st.form("accounts_add_oauth"):
        name = st.text_input("Account name", key="accounts_oauth_name")
        app_key = st.text_input("App key", key="accounts_oauth_app_key")
        app_secret = st.text_input("App secret", type="password", key="accounts_oauth_app_secret")
        code = st.text_input("Authorization code", type="password", key="accounts_oauth_code")
        api_base = st.text_input("API base", value=config.DEFAULT_API_BASE, key="accounts_oauth_api_base")
        auth_base = st.text_input("Auth base", value=config.DEFAULT_AUTH_BASE, key="accounts_oauth_auth_base")
        exchanged = st.form_submit_button("Exchange the code and connect", disabled=not may_manage)
    if not exchanged:
        return
    before = {a.shop_id for a in loaders.accounts()}
    try:
        added = connect.add_accounts_with_auth_code(
            runtime.db(), name, app_key, app_secret, code, api_base=api_base.strip(), auth_base=auth_base.strip(),
            new_account=True)
    except Exception as exc:  # noqa: BLE001 - shown as one line; what was typed stays for a retry
        _done(f"Could not connect: {explain_connect(exc)}", ok=False)
    else:
        st.session_state.pop("accounts_oauth_state", None)
        _done(_connected(added, name, before))
        _forget(*OAUTH_FIELDS)
    st.rerun()


def _set_demo(demo_account: Account | None) -> None:
    """The demo toggle's callback: keep the choice, and enable, disable or create the demo shop."""
    wanted = st.session_state["accounts_demo"]
    database = runtime.db()
    settings.set_setting(database, demo.DEMO_SETTING, "1" if wanted else "0")
    if demo_account is not None:
        accounts_core.set_enabled(database, demo_account.shop_id, wanted)
    elif wanted:
        demo.ensure_demo_account(database)
    runtime.data_changed()


def demo_shop(all_accounts: list[Account], may_manage: bool) -> None:
    """Turn the built-in demo shop on or off."""
    st.subheader("Demo shop")
    demo_account = next((a for a in all_accounts if a.name == demo.DEMO_ACCOUNT_NAME and a.is_sandbox), None)
    env_off = demo.turned_off_by_environment()
    demo_on = loaders.demo_enabled() and (demo_account is None or demo_account.enabled)
    st.toggle("Use the demo shop (sandbox data from the built-in TikTok Shop simulator)", value=demo_on,
              key="accounts_demo", on_change=_set_demo, args=(demo_account,), disabled=env_off or not may_manage)
    if env_off:
        st.caption(f"Turned off by the environment ({demo.DEMO_ENV}=0).")
    elif demo_account is None and demo_on and all_accounts:
        st.caption("The demo shop is only created in a store with no other account.")


def render() -> None:
    """Draw the page."""
    st.title("Accounts")
    may_manage = roles.MANAGE_ACCOUNTS in identity.current_permissions()
    if not may_manage:
        st.info("You can look, but only admins can add or change accounts.", icon=":material/lock:")
    all_accounts = loaders.accounts()
    show_flash()
    account_list(all_accounts, loaders.last_syncs())
    if all_accounts:
        manage(all_accounts, may_manage)
    st.subheader("Connect a shop")
    st.caption("Secrets you enter here are encrypted at rest and never shown again.")
    with_tokens, with_oauth = st.tabs(["Paste tokens", "Authorize with TikTok (OAuth)"])
    with with_tokens:
        connect_with_tokens(may_manage)
    with with_oauth:
        connect_with_oauth(may_manage)
    demo_shop(all_accounts, may_manage)


render()
