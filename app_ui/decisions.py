"""Approve or reject a return on TikTok: the decisions that fit, live reject reasons, a confirmation, the result.

UI only: the rules, the call to TikTok and the record of it live in returns_core.workflow.
This form reads the return fresh from the store, not through the cached loaders: a decision acts
on the return as it is now.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import streamlit as st

from app_ui import identity, widgets
from app_ui.formatting import utc_text
from returns_core import domain, workflow
from returns_core.accounts import Account
from returns_core.store import returns
from returns_core.store.db import Database, utcnow


def render_actions(db: Database, account: Account | None, return_row: Mapping, actor: str | None = None,
                   permissions: frozenset[str] | None = None) -> None:
    """Approve or reject on TikTok: the decisions that fit, live reject reasons, a confirmation, the result."""
    actor, permissions = identity.resolve(actor, permissions)
    shop_id, return_id = widgets.return_key(return_row)
    key = widgets.form_key("act", shop_id, return_id)
    widgets.show_flash(key)
    row = returns.find_return(db, return_id, shop_id)
    if row is None:
        st.warning(f"Return {return_id} is not in the store; sync the account first.")
        return
    # an open confirmation stays reachable even if the return moved meanwhile: its key makes a retry safe
    plan: workflow.ActionPlan | None = st.session_state.get(f"{key}_plan")
    approve, reject = domain.seller_decisions(row["return_type"], row["marketplace_status"], row["next_action"])
    if plan is None and not approve and not reject:
        st.caption(f"TikTok is not waiting for a seller decision on this return ({row['marketplace_status']}).")
        return
    if account is None or account.shop_id != shop_id:
        st.warning("The account of this return is not connected, so nothing can be sent to TikTok.")
        return
    if not account.usable:
        st.warning(f"{account.label} is **{account.status}**: reconnect or enable it on the Accounts page to "
                   "act on this return.", icon=":material/link_off:")
        return
    why = identity.block_reason(actor, permissions)
    if why:
        st.info(why, icon=":material/lock:")
    if plan is None:
        _decision_form(db, account, row, approve, reject, key, disabled=bool(why))
    else:
        _confirmation(db, account, plan, actor, key, disabled=bool(why))


def _decision_form(db: Database, account: Account, row: dict, approve: tuple[str, ...], reject: tuple[str, ...],
                   key: str, *, disabled: bool) -> None:
    """Pick a decision (and its reason or amount), then review exactly what will be sent."""
    due = domain.deadline_state(row["status"], row["due_by"], utcnow())
    if row["due_by"] is not None:
        st.caption(f"Due by {utc_text(row['due_by'])}" + (f" — **{due}**" if due else ""))
    decision = st.radio("Decision", approve + reject, key=f"{key}_decision", disabled=disabled,
                        format_func=lambda d: domain.DECISION_LABELS.get(d, d))
    options: dict = {}
    if decision in reject:
        options.update(_reject_inputs(db, account, row["return_id"], key, disabled=disabled) or {})
        if "reject_reason" not in options:
            return
    elif decision == "OFFER_PARTIAL_REFUND":
        amount = st.text_input(f"Partial refund amount ({row['refund_currency'] or 'currency unknown'})",
                               key=f"{key}_amount", disabled=disabled)
        options["partial_refund"] = {"amount": amount.strip(), "currency": row["refund_currency"] or ""}
    elif decision == "APPROVE_RETURN" and st.checkbox("Buyer keeps the item (returnless full refund)",
                                                     key=f"{key}_keep", disabled=disabled):
        options["buyer_keep_item"] = True
    if st.button("Review the request", key=f"{key}_review", disabled=disabled, icon=":material/fact_check:"):
        try:
            plan = workflow.plan_action(db, row["shop_id"], row["return_id"], decision, **options)
        except workflow.WorkflowError as exc:
            st.error(str(exc))
            return
        st.session_state[f"{key}_plan"] = _stable_plan(plan, key)
        st.rerun()


def _reject_reasons(db: Database, account: Account, return_id: str, key: str, reload: bool = False
                    ) -> list[dict] | None:
    """TikTok's reject reasons, asked once per open form (they depend on the return's state); None if TikTok failed."""
    cache_key = f"{key}_reasons"
    if reload:
        st.session_state.pop(cache_key, None)
    if cache_key not in st.session_state:
        try:
            st.session_state[cache_key] = workflow.reject_reasons(db, account, return_id)
        except workflow.WorkflowError as exc:
            st.error(str(exc))
            return None
    return st.session_state[cache_key]


def _reject_inputs(db: Database, account: Account, return_id: str, key: str, *, disabled: bool) -> dict | None:
    """The reject reason (from TikTok) and an optional comment; None when there is no reason to pick."""
    reload = st.button("Reload reasons", key=f"{key}_reload", disabled=disabled, type="tertiary",
                       icon=":material/refresh:")
    reasons = _reject_reasons(db, account, return_id, key, reload=reload)
    if reasons is None:
        return None
    if not reasons:
        st.warning("TikTok offers no reject reason for this return right now; it cannot be rejected.")
        return None
    texts = {r["name"]: r.get("text") or r["name"] for r in reasons}
    reason = st.selectbox("Reject reason (from TikTok)", list(texts), key=f"{key}_reason", disabled=disabled,
                          format_func=texts.get)
    comment = st.text_area("Comment to TikTok (optional)", key=f"{key}_comment", disabled=disabled,
                           max_chars=workflow.MAX_COMMENT_LENGTH)
    return {"reject_reason": reason, "comment": comment}


def _stable_plan(plan: workflow.ActionPlan, key: str) -> workflow.ActionPlan:
    """Reuse the idempotency key of an identical request in this open confirmation, so a retry never acts twice."""
    keys: dict[str, str] = st.session_state.setdefault(f"{key}_keys", {})
    fingerprint = json.dumps({"path": plan.request["path"], "body": plan.request["body"]}, sort_keys=True)
    if fingerprint in keys:
        return dataclasses.replace(plan, idempotency_key=keys[fingerprint])
    keys[fingerprint] = plan.idempotency_key
    return plan


def _confirmation(db: Database, account: Account, plan: workflow.ActionPlan, actor: str | None, key: str, *,
                  disabled: bool) -> None:
    """Exactly what will be sent, then Send (safe to repeat) or Back."""
    st.markdown(f"**Confirm: {domain.DECISION_LABELS.get(plan.decision, plan.decision)}** for return "
                f"`{plan.return_id}` on {account.name}. Exactly this will be sent to TikTok:")
    st.json(plan.request)
    st.caption("Sending twice (a double click or a retry) acts only once: the idempotency key stays the same.")
    send_col, cancel_col = st.columns(2)
    send = send_col.button("Send to TikTok", key=f"{key}_send", type="primary", disabled=disabled,
                           icon=":material/send:")
    if cancel_col.button("Back", key=f"{key}_cancel", icon=":material/arrow_back:"):
        st.session_state.pop(f"{key}_plan", None)
        st.rerun()
    if not send:
        return
    try:
        with st.spinner("Sending to TikTok and re-syncing the return…"):
            result = workflow.send_action(db, account, plan, actor or "")
    except workflow.WorkflowError as exc:
        st.error(str(exc))
        return
    if not result.ok:
        # the plan (and its key) stays open: "Send" again retries safely
        st.error(result.message)
        return
    for suffix in ("plan", "keys", "reasons"):
        st.session_state.pop(f"{key}_{suffix}", None)
    after = returns.find_return(db, plan.return_id, plan.shop_id) or {}
    status = f" Our Status is now {after.get('status') or 'unmapped'}."
    if result.repeated:
        widgets.flash(key, "info", f"Already sent with this confirmation; nothing was sent again. "
                                   f"{result.message}{status}")
    else:
        widgets.flash(key, "success", result.message + status)
    widgets.changed()
