"""Return detail (deep link ?id=<return id>[&shop=<account id>]): everything known about one return."""

import json

import streamlit as st

from app_pages import _common as common
from app_pages import _workflow as wf
from returns_core import accounts as accounts_core
from returns_core import domain, roles
from returns_core.explain import explain_error
from returns_core.store import returns
from returns_core.store.db import utcnow

return_id = (st.query_params.get("id") or "").strip()
shop_id = (st.query_params.get("shop") or "").strip() or None
ret = returns.find_return(common.db(), return_id, shop_id) if return_id else None

if ret is None:
    st.title("Return not found")
    if return_id:
        st.warning(f"There is no return **{return_id}** in the store"
                   + (f" for account {shop_id}" if shop_id else "")
                   + ". It may belong to an account that has not been synced yet.", icon=":material/search_off:")
    else:
        st.info("No return was chosen: open one from the Returns grid.", icon=":material/info:")
    st.page_link(common.GRID_PAGE, label="Back to Returns", icon=":material/arrow_back:",
                 query_params=common.account_query())
    st.stop()

return_id, shop_id = ret["return_id"], ret["shop_id"]
account = next((a for a in common.load_accounts(common.data_version()) if a.shop_id == shop_id), None)

st.page_link(common.GRID_PAGE, label="Back to Returns", icon=":material/arrow_back:",
             query_params=common.account_query())
st.title(f"Return {return_id}")
st.caption(f"{ret['type'] or ret['return_type'] or 'Unknown type'} · order {ret['order_id'] or 'unknown'} · "
           f"account {account.label if account else shop_id}")

# --- header ---------------------------------------------------------------------------------
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
h3.metric("Due By", common.utc_text(due_by) if due_by else "None", delta=due_note, delta_color="inverse",
          delta_arrow="off" if due_note else "auto")
st.markdown(f"**Marketplace Status** (TikTok): `{ret['marketplace_status'] or 'none'}`")
if ret["mismatch"]:
    st.warning(f"Mismatch: our Status is {ret['status']}, but TikTok's status "
               f"{ret['marketplace_status']} maps to {domain.mapped_status(ret['marketplace_status'])}.")
if ret["unmapped"]:
    st.warning(f"TikTok's status {ret['marketplace_status']} is new to us: it is kept verbatim and not mapped.")


def shown(value: object) -> str:
    return "—" if value in (None, "") else str(value)


info = st.columns(3)
info[0].markdown(f"**Reason**  \n{shown(ret['reason_text'])}  \n:gray[{ret['reason_code'] or ''}]")
info[1].markdown(f"**Created At**  \n{common.utc_text(ret['created_at'])}  \n"
                 f"**Updated At**  \n{common.utc_text(ret['updated_at'])}")
info[2].markdown(f"**Next action**  \n{shown(ret['next_action'])}  \n"
                 f"**Last synced**  \n{common.utc_text(ret['last_synced_at'])}")

# --- items and money ------------------------------------------------------------------------
st.subheader("Line items")
items = returns.return_line_items(common.db(), shop_id, return_id)
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

# --- actions: re-sync and TikTok's records --------------------------------------------------
may_act = roles.ACT in wf.current_permissions()
usable = account is not None and account.status == accounts_core.ACTIVE
if account is not None and not usable:
    st.info(f"{account.label} is **{account.status}**: reconnect or enable it on the Accounts page "
            "to re-sync this return or fetch its records.", icon=":material/link_off:")
a1, a2 = st.columns(2)
if a1.button("Re-sync this return", key="detail_resync", icon=":material/sync:", disabled=not (usable and may_act)):
    from returns_core import sync

    try:
        with st.spinner("Asking TikTok for this return..."):
            counts = sync.sync_return(common.db(), account, return_id)
    except Exception as exc:  # noqa: BLE001 - shown as one line
        st.error(f"Re-sync failed: {explain_error(exc)}")
    else:
        common.data_changed()
        st.session_state["detail_flash"] = ("Re-synced: " + ("changed." if counts.updated or counts.new
                                                             else "no change on TikTok."))
        st.rerun()
if a2.button("Fetch TikTok's records", key="detail_fetch_records", icon=":material/history:",
             disabled=not (usable and may_act)):
    from returns_core import sync

    try:
        with st.spinner("Fetching the records from TikTok..."):
            n = sync.fetch_records(common.db(), account, return_id)
    except Exception as exc:  # noqa: BLE001 - shown as one line
        st.error(f"Fetching records failed: {explain_error(exc)}")
    else:
        common.data_changed()
        st.session_state["detail_flash"] = f"Fetched {n} record(s) from TikTok."
        st.rerun()
if flash := st.session_state.pop("detail_flash", None):
    st.success(flash, icon=":material/check:")

st.subheader("TikTok's records")
records = returns.return_records(common.db(), shop_id, return_id)
if records.empty:
    st.caption("Not fetched yet: press **Fetch TikTok's records**.")
else:
    st.caption(f"Fetched {common.utc_text(records['Fetched At'].max())}.")
    st.dataframe(records.drop(columns=["Fetched At"]), hide_index=True, key="detail_records")

st.subheader("Act on this return")
act, status_col, note_col = st.tabs(["Approve / reject on TikTok", "Change status", "Add a note"])
with act:
    wf.render_actions(common.db(), account, ret)
with status_col:
    wf.render_status_change(common.db(), ret)
with note_col:
    wf.render_note(common.db(), ret)

st.subheader("Our history")
wf.render_history(common.db(), shop_id, return_id)

with st.expander("Raw payload from TikTok"):
    payload = ret["payload"]
    try:
        st.json(json.loads(payload) if isinstance(payload, str) else payload, expanded=1)
    except (TypeError, ValueError):
        st.code(str(payload))
