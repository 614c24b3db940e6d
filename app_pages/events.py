"""Webhook events: what TikTok sent, how each was processed, and the alerts that went out.

UI only: the inbox is read through returns_core.store (webhook_events, alerts) under the data
version, and acted on through returns_core.webhooks.
"""


import pandas as pd
import streamlit as st

from app_ui import identity, loaders, runtime
from app_ui.formatting import ago, local_time, md_escape, time_column
from app_ui.loaders import this_minute
from returns_core import roles, webhooks
from returns_core.store import webhook_events
from returns_core.tiktok import events as tiktok_events

LIMIT = 500
STATE_WORDS = {
    webhook_events.PENDING: "waiting", webhook_events.PROCESSING: "processing", webhook_events.DONE: "done",
    webhook_events.SKIPPED: "skipped", webhook_events.FAILED: "failed", webhook_events.KEPT: "kept, not acted on",
}
TYPE_CHOICES = {webhooks.type_name(number): number for number in sorted(tiktok_events.TOPIC_OF_TYPE)}


def render() -> None:
    """Draw the page."""
    st.title("Webhook events")
    database = runtime.db()
    inbox = webhooks.live_inbox(database.path)
    counters = (inbox.counters.received, inbox.counters.rounds) if inbox else (0, 0)
    if inbox is not None:
        st.caption(f"This app receives TikTok's webhooks at `POST {webhooks.PATH}` on its own port and processes "
                   "them as they arrive: a return's status change re-syncs that return, a revoked authorization "
                   "marks the account Invalid, an authorization about to expire raises an alert. Events are only "
                   "signals: what is stored is always what TikTok says when asked. Subscribe a shop on the "
                   "Accounts page.")
        if inbox.counters.last_error:
            st.warning(f"The last processing round failed: {md_escape(inbox.counters.last_error)}",
                       icon=":material/error:")
    else:
        st.info(f"This app was started without the webhook receiver (`streamlit run app.py`). Start it with "
                f"`bash run.sh` (`streamlit run server.py`) to receive `POST {webhooks.PATH}`. Events already "
                "stored are processed by `python -m returns_core webhooks process`.", icon=":material/webhook:")

    summary = loaders.webhook_summary(*counters)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Events", f"{summary.total:,}")
    c2.metric("Waiting", f"{summary.waiting:,}", help="Received, not processed yet")
    c3.metric("Failed", f"{summary.failed:,}", help="Gave up after the last retry")
    c4.metric("Last received", ago(summary.last_received_at),
              help=local_time(summary.last_received_at) if summary.last_received_at else None)
    if summary.failed and roles.MANAGE_ACCOUNTS in identity.current_permissions() and st.button(
            "Try the failed ones again", key="events_retry", icon=":material/replay:"):
        again = webhook_events.retry_failed(database)
        if inbox is not None:
            inbox.wake()
        runtime.data_changed()
        st.toast(f"{again:,} event(s) queued again.", icon=":material/replay:")
        st.rerun()

    if not summary.total:
        st.info("No webhook event has arrived yet.", icon=":material/inbox:")
    else:
        by_type = loaders.webhook_counts_by_type(*counters)
        table = by_type.assign(Type=by_type["event_type"].map(webhooks.type_name),
                               State=by_type["state"].map(lambda s: STATE_WORDS.get(s, s)))
        st.markdown("#### By type")
        st.caption("Every type is counted, also those Returns Desk does not act on (kept as received).")
        st.dataframe(table[["Type", "State", "events", "deliveries"]].rename(
            columns={"events": "Events", "deliveries": "Deliveries"}), hide_index=True, key="events_by_type")

        st.markdown("#### Latest events")
        f1, f2 = st.columns(2)
        states = f1.multiselect("State", list(STATE_WORDS), format_func=STATE_WORDS.get, key="events_states")
        types = f2.multiselect("Type", list(TYPE_CHOICES), key="events_types")
        rows = loaders.webhook_events_page(*counters, LIMIT, tuple(states), tuple(TYPE_CHOICES[t] for t in types))
        shown = pd.DataFrame({
            "Received": rows["received_at"],
            "Type": rows["event_type"].map(webhooks.type_name),
            "Account ID": rows["shop_id"],
            "Marketplace Return ID": rows["return_id"],
            "Event said": rows["event_status"],
            "State": rows["state"].map(lambda s: STATE_WORDS.get(s, s)),
            "Outcome": rows["outcome"],
            "Attempts": rows["attempts"],
            "Deliveries": rows["deliveries"],
            "Verified": rows["verification"].map({webhook_events.VERIFIED: "signed, account here",
                                                  webhook_events.UNKNOWN_SHOP: "signed, unknown shop"}),
            "Processed": rows["processed_at"],
            "Notification ID": rows["tts_notification_id"],
        })
        when = time_column()
        st.caption(f"Newest first, at most {LIMIT:,}. *Deliveries* counts how often TikTok sent the event: it "
                   "sends at least once, and a repeat is acknowledged without being stored again.")
        st.dataframe(shown, hide_index=True, key="events_table", column_config={
            "Received": when, "Processed": when,
            "Outcome": st.column_config.TextColumn(width="large")})
        chosen = st.selectbox("Show the body of", ["-"] + list(rows["tts_notification_id"]), key="events_body")
        if chosen != "-":
            st.code(webhooks.describe_body(webhook_events.body_of(database, chosen)), language="json")

    st.markdown("#### Alerts sent")
    sent = loaders.alerts_sent(this_minute())
    if sent.empty:
        st.caption("No alert has been raised yet; set up channels and rules on the Settings page.")
    else:
        st.dataframe(sent, hide_index=True, key="events_alerts", column_config={
            "Raised": time_column(), "Sent": time_column(), "Next attempt": time_column(),
            "Link": st.column_config.LinkColumn(display_text="open")})


render()
