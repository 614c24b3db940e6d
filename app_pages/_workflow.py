"""Workflow pieces the pages share: who am I, what may I do, actions on TikTok, status, notes, history.

UI only. The rules and the writes live in returns_core.workflow, the reads in returns_core.review and
returns_core.store.returns.
Page-local session keys start with "wf_".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import streamlit as st

from app_pages import _common as common
from returns_core import domain, review, roles, workflow
from returns_core.accounts import Account, AccountError
from returns_core.store import returns
from returns_core.store.db import utcnow
from returns_core.tiktok.errors import TikTokError
from returns_core.tiktok_session import tiktok_session

ACTOR_KEY = "actor_name"  # the sidebar's "Your name" when login is not configured
MAX_ACTOR_LENGTH = 100


# --- who am I, what may I do ----------------------------------------------------------------


def login_configured() -> bool:
    """True when secrets.toml has an [auth] section (st.login with OIDC)."""
    return common.login_configured()


def _signed_in_email() -> str | None:
    if not login_configured() or not st.user.get("is_logged_in"):
        return None
    email = st.user.get("email")
    return str(email) if email else None


def current_actor() -> str | None:
    """Who acts: the signed-in email with login, else the name typed in the sidebar; None if unknown."""
    if login_configured():
        return _signed_in_email()
    name = str(st.session_state.get(ACTOR_KEY) or "").strip()
    return name[:MAX_ACTOR_LENGTH] or None


def current_permissions() -> frozenset[str]:
    """What the current user may do: everything locally, the role's permissions with login."""
    return roles.permissions_for(login_configured(), _signed_in_email(), common.secret_section("roles"))


def current_role() -> str:
    """The role in words ("admin" on a local machine without login)."""
    if not login_configured():
        return roles.LOCAL_ROLE
    return roles.role_for(_signed_in_email(), common.secret_section("roles"))


def render_identity() -> None:
    """Sidebar: the signed-in user and role (with log in/out), or a "Your name" box without login."""
    if login_configured():
        email = _signed_in_email()
        if email:
            st.sidebar.caption(f"Signed in as **{email}** ({current_role()})")
            if st.sidebar.button("Log out", key="wf_logout", icon=":material/logout:"):
                st.logout()
        elif st.sidebar.button("Log in", key="wf_login", icon=":material/login:"):
            st.login()
        return
    st.sidebar.text_input(
        "Your name", key=ACTOR_KEY, max_chars=MAX_ACTOR_LENGTH, placeholder="Recorded in the history",
        help="No login is configured, so everyone may act; your name is written beside each change.",
    )


def block_reason(actor: str | None, permissions: frozenset[str], permission: str = roles.ACT, *,
                 need_actor: bool = True) -> str | None:
    """Why the current user cannot change anything here, or None when they can."""
    if permission not in permissions:
        if login_configured() and not _signed_in_email():
            return "Read only: log in (sidebar) to act on returns."
        return ("Read only: your role is analyst. Managers act and sign off; ask an admin to add your email "
                "to `managers` under [roles] in secrets.toml.")
    if need_actor and not actor:
        return "Enter your name in the sidebar first: every change is recorded with who made it."
    return None


def _resolve(actor: str | None, permissions: frozenset[str] | None) -> tuple[str | None, frozenset[str]]:
    return (actor if actor is not None else current_actor(),
            permissions if permissions is not None else current_permissions())


# --- small helpers --------------------------------------------------------------------------


def return_key(return_row: Mapping) -> tuple[str, str]:
    """(shop_id, return_id) from a store row or a grid row (display names)."""
    shop_id = return_row.get("shop_id") or return_row.get("Account ID")
    return_id = return_row.get("return_id") or return_row.get("Marketplace Return ID")
    if not shop_id or not return_id:
        raise ValueError("The return row needs shop_id and return_id (or Account ID and Marketplace Return ID).")
    return str(shop_id), str(return_id)


def _prefix(kind: str, shop_id: str, return_id: str) -> str:
    return f"wf_{kind}_{shop_id}_{return_id}"


def _flash(key: str, kind: str, text: str) -> None:
    """Keep a message for the next run (a rerun follows every change so the page shows fresh data)."""
    st.session_state[f"{key}_flash"] = (kind, text)


def _show_flash(key: str) -> None:
    kind, text = st.session_state.pop(f"{key}_flash", (None, None))
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind == "info":
        st.info(text)
    elif kind == "error":
        st.error(text)


def page_number(total: int, page_size: int, key: str) -> int:
    """A 1-based page picker (shown only when there is more than one page), kept within range."""
    pages = max(1, -(-total // page_size))
    if pages == 1:
        return 1
    # the list may have shrunk (a sign-off, a re-sync): a number past the end would be refused
    if st.session_state.get(key, 1) > pages:
        st.session_state[key] = pages
    return int(st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1, key=key))


def _changed() -> None:
    common.data_changed()
    st.rerun()


# --- approve / reject on TikTok -------------------------------------------------------------


def _reject_reasons(db, account: Account, return_id: str, key: str, reload: bool = False) -> list[dict] | None:
    """Reject reasons fetched live from TikTok once per open form (they depend on the return's state)."""
    cache_key = f"{key}_reasons"
    if reload:
        st.session_state.pop(cache_key, None)
    if cache_key not in st.session_state:
        try:
            with tiktok_session(db, account) as client:
                reasons = client.get_reject_reasons(return_id)
        except (TikTokError, AccountError) as exc:
            st.error(f"Could not fetch the reject reasons: {workflow.explain(exc)}")
            return None
        st.session_state[cache_key] = [r for r in reasons if isinstance(r, dict) and r.get("name")]
    return st.session_state[cache_key]


def _stable_plan(plan: workflow.ActionPlan, key: str) -> workflow.ActionPlan:
    """Reuse the idempotency key of an identical request in this open confirmation, so a retry never acts twice."""
    keys: dict[str, str] = st.session_state.setdefault(f"{key}_keys", {})
    fingerprint = json.dumps({"path": plan.request["path"], "body": plan.request["body"]}, sort_keys=True)
    if fingerprint in keys:
        return dataclasses.replace(plan, idempotency_key=keys[fingerprint])
    keys[fingerprint] = plan.idempotency_key
    return plan


def render_actions(db, account: Account | None, return_row: Mapping, actor: str | None = None,
                   permissions: frozenset[str] | None = None) -> None:
    """Approve or reject on TikTok: the decisions that fit, live reject reasons, a confirmation, the result."""
    actor, permissions = _resolve(actor, permissions)
    shop_id, return_id = return_key(return_row)
    key = _prefix("act", shop_id, return_id)
    _show_flash(key)
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
    why = block_reason(actor, permissions)
    if why:
        st.info(why, icon=":material/lock:")
    if plan is None:
        _render_decision_form(db, account, row, approve, reject, key, disabled=bool(why))
    else:
        _render_confirmation(db, account, plan, actor, key, disabled=bool(why))


def _render_decision_form(db, account: Account, row: dict, approve: tuple[str, ...], reject: tuple[str, ...],
                          key: str, *, disabled: bool) -> None:
    due = domain.deadline_state(row["status"], row["due_by"], utcnow())
    if row["due_by"] is not None:
        st.caption(f"Due by {common.utc_text(row['due_by'])}" + (f" — **{due}**" if due else ""))
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


def _reject_inputs(db, account: Account, return_id: str, key: str, *, disabled: bool) -> dict | None:
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


def _render_confirmation(db, account: Account, plan: workflow.ActionPlan, actor: str | None, key: str, *,
                         disabled: bool) -> None:
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
        _flash(key, "info", f"Already sent with this confirmation; nothing was sent again. {result.message}{status}")
    else:
        _flash(key, "success", result.message + status)
    _changed()


# --- status, notes, history -----------------------------------------------------------------


def render_status_change(db, return_row: Mapping, actor: str | None = None,
                         permissions: frozenset[str] | None = None) -> None:
    """Move Status by hand along the allowed steps (closing needs TikTok's status to agree)."""
    actor, permissions = _resolve(actor, permissions)
    shop_id, return_id = return_key(return_row)
    key = _prefix("status", shop_id, return_id)
    _show_flash(key)
    row = returns.find_return(db, return_id, shop_id)
    if row is None:
        st.warning(f"Return {return_id} is not in the store.")
        return
    current = row["status"]
    if domain.is_closed(current):
        st.caption(f"The case is closed ({current}); Status now changes only when TikTok's status does.")
        return
    steps = domain.ALLOWED_TRANSITIONS.get(current, ()) if current else domain.STATUSES
    why = block_reason(actor, permissions)
    if why:
        st.info(why, icon=":material/lock:")
    with st.form(key, border=False):
        target = st.selectbox(f"Move Status from {current or 'unmapped'} to", steps, key=f"{key}_target",
                              disabled=bool(why))
        note = st.text_input("Why (optional)", key=f"{key}_note", disabled=bool(why),
                             max_chars=workflow.MAX_NOTE_LENGTH)
        submitted = st.form_submit_button("Change status", disabled=bool(why), icon=":material/swap_horiz:")
    if submitted and not why:
        try:
            workflow.change_status(db, shop_id, return_id, target, actor or "", note)
        except workflow.WorkflowError as exc:
            st.error(str(exc))
            return
        _flash(key, "success", f"Status moved from {current} to {target}.")
        _changed()


def render_note(db, return_row: Mapping, actor: str | None = None,
                permissions: frozenset[str] | None = None) -> None:
    """Add a note to the return's history."""
    actor, permissions = _resolve(actor, permissions)
    shop_id, return_id = return_key(return_row)
    key = _prefix("note", shop_id, return_id)
    _show_flash(key)
    why = block_reason(actor, permissions)
    if why:
        st.info(why, icon=":material/lock:")
    with st.form(key, border=False, clear_on_submit=True):
        text = st.text_area("Note", key=f"{key}_text", disabled=bool(why), max_chars=workflow.MAX_NOTE_LENGTH)
        submitted = st.form_submit_button("Add note", disabled=bool(why), icon=":material/note_add:")
    if submitted and not why:
        try:
            workflow.add_note(db, shop_id, return_id, actor or "", text)
        except workflow.WorkflowError as exc:
            st.error(str(exc))
            return
        _flash(key, "success", "Note added.")
        _changed()


def render_history(db, shop_id: str, return_id: str) -> None:
    """Our own history of this return (newest first), with a CSV export."""
    frame = review.history_frame(db, shop_id, return_id)
    if frame.empty:
        st.caption("No history yet.")
        return
    st.dataframe(frame, hide_index=True, key=_prefix("history", shop_id, return_id), column_config={
        "When (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    })
    st.download_button(
        "Export history (CSV)", data=lambda: review.history_csv(db, shop_id, return_id),
        file_name=f"history_{shop_id}_{return_id}.csv", mime="text/csv", on_click="ignore",
        key=_prefix("history_csv", shop_id, return_id), icon=":material/download:",
    )
