"""Return detail (deep link ?id=<return id>[&shop=<account id>]): everything known about one return."""

import json

import streamlit as st

from app_ui import decisions, identity, loaders, navigation, runtime, status_notes
from app_ui.account_view import account_query
from app_ui.formatting import ago, local_time, md_escape
from returns_core import domain, roles, sync
from returns_core.accounts import ACTIVE, Account
from returns_core.explain import explain_error

FLASH_KEY = "detail_flash"


def shown(value: object) -> str:
    """A value from TikTok as literal markdown text, or a dash when there is none."""
    return "—" if value in (None, "") else md_escape(value)


def back_link() -> None:
    """Back to the list the return was opened from, as it was (filters, sort, page), in the same Account View."""
    page, label, query = navigation.came_from()
    st.page_link(page, label=f"Back to {label}", icon=":material/arrow_back:", query_params=query | account_query())


def not_found(return_id: str, shop_id: str | None) -> None:
    """The page when the link names no return, or one the store does not hold."""
    st.title("Return not found")
    if return_id:
        st.warning(f"There is no return **{md_escape(return_id)}** in the store"
                   + (f" for account {md_escape(shop_id)}" if shop_id else "")
                   + ". It may belong to an account that has not been synced yet.", icon=":material/search_off:")
    else:
        st.info("No return was chosen: open one from the Returns grid.", icon=":material/info:")
    back_link()


def header(ret: dict) -> None:
    """Status and TikTok's status on one line, and what is wrong with them if anything."""
    arbitration = f" · Arbitration **{shown(ret['arbitration_status'])}**" if ret["arbitration_status"] else ""
    # TikTok's own code is one hover away (support asks for it), not inline beside its meaning
    st.markdown(f"Status **{ret['status'] or 'Unmapped'}** · TikTok: "
                f"{shown(domain.marketplace_status_label(ret['marketplace_status']))}{arbitration}",
                help=f"TikTok's status, verbatim: {md_escape(ret['marketplace_status'] or 'none', code=True)}")
    st.caption(f"Created {local_time(ret['created_at'])} · Updated {local_time(ret['updated_at'])} · "
               f"Last synced {ago(ret['last_synced_at'])}")
    if ret["mismatch"]:
        expected = domain.mapped_status(ret["marketplace_status"], ret.get("kind"))
        st.warning(f"Mismatch: our Status is {ret['status']}, but TikTok's status "
                   f"{shown(ret['marketplace_status'])} maps to {expected}.")
    if ret["unmapped"]:
        st.warning(f"TikTok's status {shown(ret['marketplace_status'])} is new to us: it is kept verbatim and not "
                   "mapped.")
    status_notes.render_future_note(ret)


def shipping_and_items(ret: dict) -> None:
    """Shipping and tracking, and every field of the line items (the card shows the essentials)."""
    st.markdown(f"**Shipping & tracking:** {shown(ret['shipping_provider'])} · tracking number "
                f"{shown(ret['tracking_number'])}")
    with st.expander("Every line item field"):
        items = loaders.line_items(ret["shop_id"], ret["return_id"])
        if items.empty:
            st.caption("TikTok sent no line items for this return.")
        else:
            st.dataframe(items, hide_index=True, key="detail_items", column_config={
                "Image": st.column_config.LinkColumn(display_text="Open image"),
                "Refund": st.column_config.NumberColumn(format="%.2f"),
            })


def tiktok_buttons(account: Account | None, return_id: str, *, has_records: bool = True) -> None:
    """Re-sync the return, or fetch TikTok's records of it (needs a usable account and the right to act)."""
    may_act = roles.ACT in identity.current_permissions()
    usable = account is not None and account.status == ACTIVE
    if account is not None and not usable:
        st.info(f"{md_escape(account.label)} is **{account.status}**: reconnect or enable it on the Accounts page "
                "to re-sync this return or fetch its records.", icon=":material/link_off:")
    a1, a2 = st.columns(2)
    if a1.button("Re-sync this return", key="detail_resync", icon=":material/sync:",
                 disabled=not (usable and may_act)):
        try:
            with st.spinner("Asking TikTok for this return..."):
                counts = sync.sync_return(runtime.db(), account, return_id)
        except Exception as exc:  # noqa: BLE001 - shown as one line
            st.error(f"Re-sync failed: {md_escape(explain_error(exc))}")
        else:
            runtime.data_changed()
            st.session_state[FLASH_KEY] = ("Re-synced: " + ("changed." if counts.updated or counts.new
                                                             else "no change on TikTok."))
            st.rerun()
    # TikTok keeps event records for returns only (Get Return Records): a cancellation has none to fetch
    if has_records and a2.button("Fetch TikTok's records", key="detail_fetch_records", icon=":material/history:",
                                 disabled=not (usable and may_act)):
        try:
            with st.spinner("Fetching the records from TikTok..."):
                n = sync.fetch_records(runtime.db(), account, return_id)
        except Exception as exc:  # noqa: BLE001 - shown as one line
            st.error(f"Fetching records failed: {md_escape(explain_error(exc))}")
        else:
            runtime.data_changed()
            st.session_state[FLASH_KEY] = f"Fetched {n} record(s) from TikTok."
            st.rerun()
    if flash := st.session_state.pop(FLASH_KEY, None):
        st.success(flash, icon=":material/check:")


def tiktok_records(shop_id: str, return_id: str) -> None:
    """TikTok's event records of the return, once fetched."""
    st.subheader("TikTok's records")
    records = loaders.tiktok_records(shop_id, return_id)
    if records.empty:
        st.caption("Not fetched yet: press **Fetch TikTok's records**.")
    else:
        st.caption(f"Fetched {local_time(records['Fetched At'].max())}.")
        st.dataframe(records.drop(columns=["Fetched At"]), hide_index=True, key="detail_records")


def act(ret: dict) -> None:
    """Change Status by hand or add a note (deciding on TikTok is the card's)."""
    status_col, note_col = st.tabs(["Change status", "Add a note"])
    with status_col:
        status_notes.render_status_change(runtime.db(), ret)
    with note_col:
        status_notes.render_note(runtime.db(), ret)


def raw_payload(payload: object) -> None:
    """TikTok's own JSON for the return, folded away."""
    with st.expander("Raw payload from TikTok"):
        try:
            st.json(json.loads(payload) if isinstance(payload, str) else payload, expanded=1)
        except (TypeError, ValueError):
            st.code(str(payload))


def render() -> None:
    """Draw the page."""
    return_id = (st.query_params.get("id") or "").strip()
    shop_id = (st.query_params.get("shop") or "").strip() or None
    ret = loaders.find_return(return_id, shop_id) if return_id else None
    if ret is None:
        not_found(return_id, shop_id)
        return
    return_id, shop_id = ret["return_id"], ret["shop_id"]
    account = next((a for a in loaders.accounts() if a.shop_id == shop_id), None)

    back_link()
    cancellation = ret.get("kind") == domain.CANCELLATION_KIND
    st.title(f"{'Cancellation' if cancellation else 'Return'} {md_escape(return_id)}")
    st.caption(f"{shown(ret['type'] or ret['return_type'] or 'Unknown type')} · order {shown(ret['order_id'])} · "
               f"account {md_escape(account.label if account else shop_id)}")
    header(ret)
    with st.container(border=True):
        decisions.decision_card(runtime.db(), account, ret, place="detail")
    shipping_and_items(ret)
    tiktok_buttons(account, return_id, has_records=not cancellation)
    act(ret)
    st.subheader("Our history")
    status_notes.render_history(runtime.db(), shop_id, return_id)
    if not cancellation:
        tiktok_records(shop_id, return_id)
    raw_payload(ret["payload"])


render()
