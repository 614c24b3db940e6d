"""Settings: where alerts go (apprise channels), which rules raise them, and the app's public address.

A channel's address holds its secret (an SMTP password, a Slack webhook): it is typed once, kept
encrypted (returns_core.alerts), and from then on shown only as scheme and host. Test results and
errors come scrubbed of it.
"""

import streamlit as st

from app_ui import identity, runtime
from app_ui.formatting import local_time, md_escape, time_column
from returns_core import alerts, roles
from returns_core.store import alerts as alert_rows
from returns_core.store.alerts import Channel

FLASH_KEY = "settings_flash"
URL_KEY, NAME_KEY, BASE_URL_KEY = "settings_channel_url", "settings_channel_name", "settings_base_url"
RECENT = 50


def _done(message: str, ok: bool = True) -> None:
    """Show the outcome on the next run, above the widgets that caused it."""
    st.session_state[FLASH_KEY] = ("ok" if ok else "error", message)


def show_flash() -> None:
    """The outcome of the last change, once."""
    if flash := st.session_state.pop(FLASH_KEY, None):
        kind, text = flash
        (st.success if kind == "ok" else st.error)(text)


# --- channels -------------------------------------------------------------------------------------


def test_channel(channel_id: int, name: str) -> None:
    """Send a test message now and say how it went."""
    try:
        error = alerts.test_channel(runtime.db(), channel_id)
    except alerts.AlertError as exc:
        error = str(exc)
    _done(f"Test message sent to **{md_escape(name)}**." if error is None
          else f"Test to **{md_escape(name)}** failed: {md_escape(error)}", ok=error is None)


def remove_channel(channel_id: int, name: str) -> None:
    """Remove the channel; what waited to go to it is dropped."""
    try:
        alerts.remove_channel(runtime.db(), channel_id)
        _done(f"Removed **{md_escape(name)}**.")
    except alerts.AlertError as exc:
        _done(md_escape(exc), ok=False)


def add_channel() -> None:
    """Keep the typed channel, and forget what was typed: the address is a secret."""
    url, name = st.session_state.get(URL_KEY) or "", st.session_state.get(NAME_KEY) or ""
    # out of the session (and the widget) before anything can fail
    st.session_state[URL_KEY] = st.session_state[NAME_KEY] = ""
    try:
        added = alerts.add_channel(runtime.db(), url, name)
        _done(f"Added **{md_escape(added.name)}** ({md_escape(added.shown, code=True)}). Press **Test** to check it.")
    except alerts.AlertError as exc:
        _done(md_escape(exc), ok=False)


def channel_row(channel: Channel, may_manage: bool) -> None:
    """One channel: its name and redacted address, Test and Remove."""
    with st.container(border=True):
        text_col, test_col, remove_col = st.columns([6, 1, 1], vertical_alignment="center")
        text_col.markdown(f"**{md_escape(channel.name)}** · {md_escape(channel.shown, code=True)}")
        text_col.caption(f"Added {local_time(channel.created_at)}. The full address is kept encrypted "
                         "and never shown.")
        test_col.button("Test", key=f"settings_test_{channel.id}", icon=":material/send:", disabled=not may_manage,
                        on_click=test_channel, args=(channel.id, channel.name), width="stretch")
        remove_col.button("Remove", key=f"settings_remove_{channel.id}", icon=":material/delete:",
                          disabled=not may_manage, on_click=remove_channel, args=(channel.id, channel.name),
                          width="stretch")


def channels_section(may_manage: bool) -> None:
    """The channels, and the form that adds one."""
    st.markdown("#### Channels")
    channels = alerts.channels(runtime.db())
    if not channels:
        st.info("No channel yet, so no alert is raised or sent: add one below.", icon=":material/notifications_off:")
    for channel in channels:
        channel_row(channel, may_manage)
    with st.form("settings_add_channel", clear_on_submit=True):
        st.markdown("**Add a channel**")
        st.text_input("Name", key=NAME_KEY, placeholder="Ops e-mail", max_chars=alerts.MAX_NAME_LENGTH)
        st.text_input("Apprise address", key=URL_KEY, type="password",
                      help="Any address apprise takes. E-mail: `mailtos://user:password@smtp.example.com"
                           "?to=ops@example.com` (`mailto://` without TLS). Slack: `slack://TokenA/TokenB/TokenC/"
                           "#channel` or the `https://hooks.slack.com/services/...` URL. Teams: `msteams://...` or "
                           "its workflow URL. A JSON webhook: `json://host:port/path` (`jsons://` for HTTPS).")
        st.form_submit_button("Add channel", icon=":material/add:", disabled=not may_manage, on_click=add_channel)


# --- rules and the app's address ----------------------------------------------------------------


def save_rules() -> None:
    """Keep every rule's switch and threshold as set in the form."""
    try:
        for name in alerts.RULES:
            alerts.set_rule(runtime.db(), name, on=st.session_state[f"settings_rule_on_{name}"],
                            threshold=st.session_state[f"settings_rule_n_{name}"])
        _done("Alert rules saved.")
    except alerts.AlertError as exc:
        _done(md_escape(exc), ok=False)


def rules_section(may_manage: bool) -> None:
    """Each rule: on or off, its threshold, what it watches."""
    st.markdown("#### Rules")
    chosen = alerts.rule_settings(runtime.db())
    with st.form("settings_rules"):
        for name, rule in alerts.RULES.items():
            on_col, n_col = st.columns([3, 2], vertical_alignment="bottom")
            on_col.toggle(rule.label, value=chosen[name].on, key=f"settings_rule_on_{name}", disabled=not may_manage)
            n_col.number_input(rule.unit.capitalize(), min_value=rule.low, max_value=rule.high, step=1,
                               value=chosen[name].threshold, key=f"settings_rule_n_{name}", disabled=not may_manage)
            st.caption(f"{rule.describe(chosen[name].threshold)} Default: {rule.default} {rule.unit}.")
        st.form_submit_button("Save rules", icon=":material/save:", disabled=not may_manage, on_click=save_rules)


def save_base_url() -> None:
    """Keep the app's public address, the start of every link in an alert."""
    try:
        kept = alerts.set_base_url(runtime.db(), st.session_state[BASE_URL_KEY])
        _done(f"Links in alerts now start with {md_escape(kept)}.")
    except alerts.AlertError as exc:
        _done(md_escape(exc), ok=False)


def address_section(may_manage: bool) -> None:
    """The app's public address, for the links in alerts."""
    with st.form("settings_address"):
        st.text_input("The app's address", value=alerts.base_url(runtime.db()), key=BASE_URL_KEY,
                      help="Where people open this app; links in alerts start with it.")
        st.form_submit_button("Save address", icon=":material/link:", disabled=not may_manage,
                              on_click=save_base_url)


# --- what was sent ---------------------------------------------------------------------------------


def check_now() -> None:
    """Evaluate the rules now (as the scheduler does every minute) and say what happened."""
    result = alerts.evaluate(runtime.db(), raised_by="app")
    _done(result.summary() + (f" Last error: {result.errors[-1]}" if result.errors else ""), ok=not result.errors)


def sent_section(may_manage: bool) -> None:
    """The latest alerts, one row per channel, with their outcome, attempts and last error."""
    st.markdown("#### Alerts sent")
    st.button("Check now", key="settings_check_now", icon=":material/notifications_active:",
              disabled=not may_manage, on_click=check_now, help="Run the rules now instead of at the next minute")
    sent = alert_rows.recent(runtime.db(), RECENT)
    if sent.empty:
        st.caption("No alert raised yet.")
        return
    when = time_column()
    st.dataframe(sent.drop(columns=["Account ID"]), hide_index=True, key="settings_alerts", column_config={
        "Raised": when, "Sent": when, "Next attempt": when, "Link": st.column_config.LinkColumn(display_text="Open"),
    })


def render() -> None:
    """Draw the page."""
    st.title("Settings")
    may_manage = roles.MANAGE_ACCOUNTS in identity.current_permissions()
    if not may_manage:
        st.info("You can look, but only admins can change settings.", icon=":material/lock:")
    show_flash()
    st.subheader("Alerts")
    st.caption("An alert goes out once per subject and rule (a return's deadline, a spike, a shop's authorization, "
               "a run of failed syncs) to every channel below, with a link into the app. The app checks every "
               "minute while it runs; when it does not, cron runs `python -m returns_core alerts`. Both may run at "
               "once: nothing is sent twice. Failed sends are retried, then listed below as failed.")
    channels_section(may_manage)
    rules_section(may_manage)
    address_section(may_manage)
    sent_section(may_manage)


render()
