"""Return detail (deep link ?id=<return id>[&shop=<account id>]): everything known about one return."""

import json

import streamlit as st

from app_ui import decisions, identity, loaders, runtime, status_notes
from app_ui.account_view import account_query
from app_ui.formatting import utc_text
from app_ui.navigation import GRID_PAGE
from returns_core import domain, roles, sync
from returns_core.accounts import ACTIVE, Account
from returns_core.explain import explain_error
from returns_core.store.db import utcnow

FLASH_KEY = "detail_flash"


def shown(value: object) -> str:
    """A value as text, or a dash when there is none."""
    return "—" if value in (None, "") else str(value)


def back_link() -> None:
    """Back to the grid, in the same Account View."""
    st.page_link(GRID_PAGE, label="Back to Returns", icon=":material/arrow_back:", query_params=account_query())


def not_found(return_id: str, shop_id: str | None) -> None:
    """The page when the link names no return, or one the store does not hold."""
    st.title("Return not found")
    if return_id:
        st.warning(f"There is no return **{return_id}** in the store"
                   + (f" for account {shop_id}" if shop_id else "")
                   + ". It may belong to an account that has not been synced yet.", icon=":material/search_off:")
    else:
        st.info("No return was chosen: open one from the Returns grid.", icon=":material/info:")
    back_link()


def header(ret: dict) -> None:
    """Status, arbitration and Due By, and what is wrong with the return's status if anything."""
    now = utcnow()
    due_by = ret["due_by"]
    deadline = domain.deadline_state(ret["status"], due_by, now)  # none for a closed case
    due_note = None
    if deadline == domain.OVERDUE:
        due_note = "Overdue"
    elif deadline == domain.DUE_SOON:
        due_note = f"Due in {(due_by - now).total_seconds() / 3600:.0f} h"
    h1, h2, h3 = st.columns(3)
    h1.metric("Status", ret["status"] or "Unmapped")
    h2.metric("Arbitration", ret["arbitration_status"] or "None")
    h3.metric("Due By", utc_text(due_by) if due_by else "None", delta=due_note, delta_color="inverse",
              delta_arrow="off" if due_note else "auto")
    st.markdown(f"**Marketplace Status** (TikTok): `{ret['marketplace_status'] or 'none'}`")
    if ret["mismatch"]:
        st.warning(f"Mismatch: our Status is {ret['status']}, but TikTok's status "
                   f"{ret['marketplace_status']} maps to {domain.mapped_status(ret['marketplace_status'])}.")
    if ret["unmapped"]:
        st.warning(f"TikTok's status {ret['marketplace_status']} is new to us: it is kept verbatim and not mapped.")
    info = st.columns(3)
    info[0].markdown(f"**Reason**  \n{shown(ret['reason_text'])}  \n:gray[{ret['reason_code'] or ''}]")
    info[1].markdown(f"**Created At**  \n{utc_text(ret['created_at'])}  \n"
                     f"**Updated At**  \n{utc_text(ret['updated_at'])}")
    info[2].markdown(f"**Next action**  \n{shown(ret['next_action'])}  \n"
                     f"**Last synced**  \n{utc_text(ret['last_synced_at'])}")


def items_and_money(ret: dict) -> None:
    """Line items, the refund amounts, and shipping."""
    st.subheader("Line items")
    items = loaders.line_items(ret["shop_id"], ret["return_id"])
    if items.empty:
        st.caption("TikTok sent no line items for this return.")
    else:
        st.dataframe(items, hide_index=True, key="detail_items", column_config={
            "Image": st.column_config.LinkColumn(display_text="Open image"),
            "Refund": st.column_config.NumberColumn(format="%.2f"),
        })
    money, shipping = st.columns(2)
    with money:
        st.subheader("Refund")
        currency = ret["refund_currency"] or ""
        for label, column in (("Total", "refund_total"), ("Subtotal", "refund_subtotal"),
                              ("Shipping", "refund_shipping_fee"), ("Tax", "refund_tax")):
            value = ret[column]
            st.markdown(f"{label}: **{f'{value:,.2f} {currency}' if value is not None else '—'}**")
    with shipping:
        st.subheader("Shipping & tracking")
        st.markdown(f"Carrier: **{shown(ret['shipping_provider'])}**  \n"
                    f"Tracking number: **{shown(ret['tracking_number'])}**")


def tiktok_buttons(account: Account | None, return_id: str) -> None:
    """Re-sync the return, or fetch TikTok's records of it (needs a usable account and the right to act)."""
    may_act = roles.ACT in identity.current_permissions()
    usable = account is not None and account.status == ACTIVE
    if account is not None and not usable:
        st.info(f"{account.label} is **{account.status}**: reconnect or enable it on the Accounts page "
                "to re-sync this return or fetch its records.", icon=":material/link_off:")
    a1, a2 = st.columns(2)
    if a1.button("Re-sync this return", key="detail_resync", icon=":material/sync:",
                 disabled=not (usable and may_act)):
        try:
            with st.spinner("Asking TikTok for this return..."):
                counts = sync.sync_return(runtime.db(), account, return_id)
        except Exception as exc:  # noqa: BLE001 - shown as one line
            st.error(f"Re-sync failed: {explain_error(exc)}")
        else:
            runtime.data_changed()
            st.session_state[FLASH_KEY] = ("Re-synced: " + ("changed." if counts.updated or counts.new
                                                             else "no change on TikTok."))
            st.rerun()
    if a2.button("Fetch TikTok's records", key="detail_fetch_records", icon=":material/history:",
                 disabled=not (usable and may_act)):
        try:
            with st.spinner("Fetching the records from TikTok..."):
                n = sync.fetch_records(runtime.db(), account, return_id)
        except Exception as exc:  # noqa: BLE001 - shown as one line
            st.error(f"Fetching records failed: {explain_error(exc)}")
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
        st.caption(f"Fetched {utc_text(records['Fetched At'].max())}.")
        st.dataframe(records.drop(columns=["Fetched At"]), hide_index=True, key="detail_records")


def act(account: Account | None, ret: dict) -> None:
    """Approve / reject on TikTok, change Status, add a note."""
    st.subheader("Act on this return")
    on_tiktok, status_col, note_col = st.tabs(["Approve / reject on TikTok", "Change status", "Add a note"])
    with on_tiktok:
        decisions.render_actions(runtime.db(), account, ret)
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
    st.title(f"Return {return_id}")
    st.caption(f"{ret['type'] or ret['return_type'] or 'Unknown type'} · order {ret['order_id'] or 'unknown'} · "
               f"account {account.label if account else shop_id}")
    header(ret)
    items_and_money(ret)
    tiktok_buttons(account, return_id)
    tiktok_records(shop_id, return_id)
    act(account, ret)
    st.subheader("Our history")
    status_notes.render_history(runtime.db(), shop_id, return_id)
    raw_payload(ret["payload"])


render()
