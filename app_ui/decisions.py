"""One decision card, the same wherever a return is decided (the detail page, the grid's Actions dialog,
the Review Queue), and the bulk form for several returns at once.

The card shows what the buyer asks (type, money and its breakdown, items), why (the reason, the buyer's
own comment, photos and videos from TikTok's records), by when (a live countdown in the viewer's time
zone, and what TikTok does if nobody answers), and the decisions TikTok accepts now (Get Decision
Eligibility, or the state rules when TikTok cannot say). Nothing is pre-selected. A decision is
reviewed in plain words, the exact request one click away, then sent; the outcome shows in place.

UI only: the rules, the checks, the call to TikTok and the record of it live in returns_core.workflow.
The card reads the return fresh from the store, not through the cached loaders: a decision acts on
the return as it is now. Steps move through callbacks (no st.rerun), so a dialog stays open.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from app_ui import identity, runtime, widgets
from app_ui.formatting import local_time
from app_ui.formatting import md_escape as _md
from app_ui.navigation import DETAIL_PAGE
from returns_core import domain, review, roles, sync, workflow
from returns_core.accounts import Account
from returns_core.explain import explain_error
from returns_core.store import returns
from returns_core.store.db import Database, utcnow

BREAKDOWN = (("Items", "refund_subtotal"), ("Shipping", "refund_shipping_fee"), ("Tax", "refund_tax"))


# --- the card --------------------------------------------------------------------------------


def decision_card(db: Database, account: Account | None, return_row: Mapping, *, place: str,
                  in_dialog: bool = False) -> None:
    """The whole card for one return: what, why, by when, and the decision (when TikTok waits for one)."""
    shop_id, return_id = widgets.return_key(return_row)
    key = widgets.form_key("act", shop_id, return_id)
    show_outcome(place)
    row = returns.find_return(db, return_id, shop_id)
    if row is None:
        st.warning(f"Return {_md(return_id)} is not in the store; sync the account first.")
        return
    # what and why on the left, by when and the decision on the right: one screen at 1440 x 900; on a
    # phone the columns stack in reading order
    facts, choice = st.columns([4, 3], gap="medium")
    with facts:
        what_the_buyer_asks(db, row)
        why_they_ask(db, account, row, key)
    with choice:
        by_when(row, key)
        decide(db, account, row, key, place=place, in_dialog=in_dialog)


def what_the_buyer_asks(db: Database, row: Mapping) -> None:
    """Type, the refund asked for with its breakdown, and each item (image, name, SKU, quantity)."""
    currency = row["refund_currency"]
    kind = domain.request_kind(row["return_type"]) or row["type"] or "Request"
    st.markdown(f"**{_md(kind)}** · the buyer asks for **{_md(workflow.money_text(row['refund_total'], currency))}**")
    parts = [f"{label} {_md(workflow.money_text(row[column], currency))}" for label, column in BREAKDOWN
             if row[column] is not None]
    if parts:
        st.caption("Breakdown: " + " · ".join(parts))
    items = review.items_with_quantity(returns.return_line_items(db, row["shop_id"], row["return_id"]))
    if items.empty:
        st.caption("TikTok sent no line items for this request.")
        return
    lines = []
    for item in items.itertuples(index=False):
        name = " · ".join(str(p) for p in (item.Product, item.Variant) if isinstance(p, str) and p) or "An item"
        url = review.web_url(item.Image)
        # alt="" keeps a picture that cannot load out of sight instead of a broken-image box
        image = (f'<img src="{_attr(url)}" alt="" height="36" style="vertical-align:middle;border-radius:4px;'
                 f'margin-right:6px">' if url else "")
        sku = f" · SKU {_md(item.SKU)}" if isinstance(item.SKU, str) and item.SKU else ""
        lines.append(f"{image}**{_md(name)}** × {item.Qty}{sku} · {_md(workflow.money_text(item.Refund, currency))}")
    st.markdown("  \n".join(lines), unsafe_allow_html=True)


def why_they_ask(db: Database, account: Account | None, row: Mapping, key: str) -> None:
    """The reason in words, and the buyer's comment, photos and videos from TikTok's records."""
    st.markdown(f"**Why:** {_md(row['reason_text'] or 'TikTok gave no reason')}")
    if row.get("kind") == domain.CANCELLATION_KIND:
        # TikTok keeps no event records for a cancellation (Get Return Records is for returns): its reason is all
        st.caption("A cancellation before shipment carries the buyer's reason only: no comment, photo or video.")
        return
    evidence = review.buyer_evidence(db, row["shop_id"], row["return_id"])
    if evidence.fetched_at is None:
        evidence = _fetch_evidence(db, account, row, key) or evidence
    for comment in evidence.comments:
        st.markdown("> " + "  \n> ".join(_md(line) for line in comment.splitlines()))
    if evidence.photos or evidence.videos:
        thumbs = "".join(
            f'<a href="{_attr(url)}" target="_blank" rel="noopener noreferrer">'
            f'<img src="{_attr(url)}" alt="Photo {n}" height="72" style="margin:0 6px 6px 0;border-radius:4px"></a>'
            for n, url in enumerate(evidence.photos, start=1))
        videos = " ".join(
            f'<a href="{_attr(v.url)}" target="_blank" rel="noopener noreferrer">▶ Video {n}'
            + (f" ({v.seconds} s)" if v.seconds else "") + "</a>" for n, v in enumerate(evidence.videos, start=1))
        st.markdown(f"<div>{thumbs}</div><div>{videos}</div>", unsafe_allow_html=True)
        st.caption(f"{len(evidence.photos)} photo(s), {len(evidence.videos)} video(s) from the buyer; "
                   "click one to open it full size.")
    elif evidence.fetched_at is not None and not evidence.comments:
        st.caption("The buyer added no comment, photo or video.")


def _fetch_evidence(db: Database, account: Account | None, row: Mapping, key: str) -> review.BuyerEvidence | None:
    """Fetch TikTok's records once per session when none are stored (they hold the buyer's words and photos)."""
    tried = f"{key}_records_tried"
    if st.session_state.get(tried):
        return None
    # the same rule as the page's own "Fetch TikTok's records": a usable account, and the right to act
    if account is None or not account.usable or roles.ACT not in identity.current_permissions():
        st.caption("The buyer's comment and photos are in TikTok's records, not fetched yet.")
        return None
    st.session_state[tried] = True
    try:
        with st.spinner("Fetching the buyer's comment and photos from TikTok…"):
            sync.fetch_records(db, account, row["return_id"])
    except Exception as exc:  # noqa: BLE001 - shown as one line; the card works without them
        st.caption(f"TikTok's records could not be fetched: {_md(explain_error(exc))}")
        return None
    runtime.data_changed()  # the page's own list of TikTok's records reads them again
    return review.buyer_evidence(db, row["shop_id"], row["return_id"])


def by_when(row: Mapping, key: str) -> None:
    """Due By as a countdown in the viewer's time zone, kept current in the browser, and what TikTok does then."""
    due_by = row["due_by"]
    if_nobody = domain.if_nobody_answers(row["return_type"], row["marketplace_status"], row["next_action"])
    if due_by is None:
        if if_nobody:
            st.caption(f"TikTok gave no deadline for this decision. If nobody answers, {if_nobody}.")
        return
    if domain.is_closed(row["status"]):
        return  # a closed case waits for nobody, whatever Due By it kept (domain.deadline_state's rule)
    element = f"due-{key}"
    left = countdown_text(due_by, utcnow())
    st.markdown(f":material/timer: **<span id=\"{element}\">{left}</span>** · by {local_time(due_by)}",
                unsafe_allow_html=True)
    if if_nobody:
        st.caption(f"If nobody answers by then, {if_nobody}.")
    # the countdown moves on in the browser, without reruns; the text above is right when drawn
    due_ms = int(due_by.replace(tzinfo=UTC).timestamp() * 1000)
    st.html(f"""<script>(() => {{
  const id = {json.dumps(element)}, due = {due_ms};
  const timers = (window.__returnsDeskTimers = window.__returnsDeskTimers || {{}});
  clearInterval(timers[id]);
  const words = (ms) => {{
    const m = Math.floor(Math.abs(ms) / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
    return d ? `${{d}} d ${{h}} h` : h ? `${{h}} h ${{m % 60}} min` : `${{m % 60}} min`;
  }};
  const tick = () => {{
    const el = document.getElementById(id);
    if (!el) {{ clearInterval(timers[id]); return; }}
    const ms = due - Date.now();
    el.textContent = ms > 0 ? `Due in ${{words(ms)}}` : `Overdue by ${{words(ms)}}`;
  }};
  tick();
  timers[id] = setInterval(tick, 30000);
}})();</script>""", unsafe_allow_javascript=True, width="content")


def countdown_text(due_by: datetime, now: datetime) -> str:
    """'Due in 5 h 12 min' or 'Overdue by 2 h 3 min' (naive UTC times)."""
    seconds = (due_by - now).total_seconds()
    return f"Due in {review.format_age(seconds)}" if seconds > 0 else f"Overdue by {review.format_age(-seconds)}"


# --- deciding ----------------------------------------------------------------------------------


def decide(db: Database, account: Account | None, row: Mapping, key: str, *, place: str, in_dialog: bool) -> None:
    """The decisions TikTok accepts now, then a plain-words confirmation, then Send; the outcome in place."""
    done = st.session_state.get(f"{key}_done")
    if done:
        _show_done(done, in_dialog)
        return
    plan: workflow.ActionPlan | None = st.session_state.get(f"{key}_plan")
    if plan is None and not domain.can_decide(row["return_type"], row["marketplace_status"], row["next_action"]):
        st.caption(f"TikTok is not waiting for a seller decision on this {domain.noun(row.get('kind'))} "
                   f"({_md(domain.marketplace_status_label(row['marketplace_status']) or 'no status')}).")
        return
    if account is None or account.shop_id != row["shop_id"]:
        st.warning("The account of this return is not connected, so nothing can be sent to TikTok.")
        return
    if not account.usable:
        st.warning(f"{_md(account.label)} is **{account.status}**: reconnect or enable it on the Accounts page to "
                   "decide on this return.", icon=":material/link_off:")
        return
    # the role may forbid deciding; a missing name is asked for next to the button that needs it
    locked = identity.block_reason(None, identity.current_permissions(), need_actor=False)
    if locked:
        st.info(locked, icon=":material/lock:")
    if plan is None:
        _choose(db, account, row, key, locked=bool(locked))
    else:
        _confirm(db, account, plan, key, place=place, in_dialog=in_dialog, locked=bool(locked))


def _options(db: Database, account: Account, row: Mapping, key: str) -> workflow.DecisionOptions:
    """TikTok's eligible decisions, asked once per open card and return version (Ask again refreshes)."""
    cache = f"{key}_options"
    version = row["updated_at"]
    held = st.session_state.get(cache)
    if held is None or held[0] != version:
        with st.spinner("Asking TikTok which decisions it accepts now…"):
            held = (version, workflow.decision_options(db, account, row["return_id"]))
        st.session_state[cache] = held
    return held[1]


def _choose(db: Database, account: Account, row: Mapping, key: str, *, locked: bool) -> None:
    """Pick one of the decisions TikTok accepts now (none pre-selected), with its reason or amount."""
    disabled = locked
    options = _options(db, account, row, key)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):  # one line on a phone too
        st.markdown("**Your decision** " + (":gray[· TikTok accepts these now]" if options.asked_tiktok else
                                            ":gray[· by the return's state]"), width="content")
        st.button("", key=f"{key}_ask_again", type="tertiary", icon=":material/refresh:", on_click=_forget,
                  args=(key, "options", "reasons"), help="Ask TikTok again which decisions it accepts now")
    if options.note:
        st.caption(_md(options.note))
    for refused, why in options.refused.items():
        st.caption(f"Not possible now: {_md(domain.DECISION_LABELS.get(refused, refused))}: {_md(why)}")
    if not options.decisions:
        return
    decision = st.radio("Decision", _choices(options.decisions), index=None, key=f"{key}_decision",
                        disabled=disabled, format_func=_choice_label, label_visibility="collapsed")
    reasons: list[dict] | None = None
    if decision in options.reject:
        reasons = _reject_reasons(db, account, row["return_id"], key, options, decision)
        if reasons is None:
            return
        if not reasons:
            st.warning("TikTok offers no reject reason for this return right now; it cannot be rejected.")
            return
        texts = {r["name"]: r.get("text") or r["name"] for r in reasons}
        st.selectbox("Reject reason (from TikTok)", list(texts), index=None, key=f"{key}_reason",
                     format_func=texts.get, placeholder="Choose TikTok's reason", disabled=disabled)
        st.text_area("Comment to TikTok (optional)", key=f"{key}_comment", disabled=disabled, height=68,
                     max_chars=workflow.MAX_COMMENT_LENGTH)
    elif decision == "OFFER_PARTIAL_REFUND":
        total = _md(workflow.money_text(row["refund_total"], row["refund_currency"]))
        st.text_input(f"Partial refund amount ({_md(row['refund_currency'] or 'currency unknown')})",
                      key=f"{key}_amount", disabled=disabled, placeholder="e.g. 12.50",
                      on_change=_check_amount, args=(row, key),
                      help=f"Less than the refund total, {total}. A decimal comma (12,50) is fine.")
    actor = None if locked else identity.ask_name(key)
    st.button("Review the decision", key=f"{key}_review", type="primary", disabled=not actor or decision is None,
              icon=":material/fact_check:", on_click=_review, args=(db, row, options, reasons, key))
    # below the button, never above it: a refusal that goes away (a corrected amount, applied as the user
    # clicks Review) must not move the button out from under the click
    _error(key)


def _choices(decisions: Sequence[str]) -> list[str]:
    """TikTok's decisions, with APPROVE_RETURN's returnless full refund (buyer_keep_item) as a choice of its own
    right after it: a checkbox under "Approve the return" read like a second partial-refund path."""
    choices = list(decisions)
    if "APPROVE_RETURN" in choices:
        choices.insert(choices.index("APPROVE_RETURN") + 1, domain.RETURNLESS_REFUND)
    return choices


def _choice_label(choice: str) -> str:
    if choice == domain.RETURNLESS_REFUND:
        return domain.RETURNLESS_REFUND_LABEL
    return domain.DECISION_LABELS.get(choice, choice)


def _error(key: str) -> None:
    """The refusal of the last Review (or amount), once."""
    if error := st.session_state.pop(f"{key}_error", None):
        st.error(_md(error), icon=":material/error:")


def _check_amount(row: Mapping, key: str) -> None:
    """On a changed partial refund amount: the old refusal goes, a wrong new amount is refused at once."""
    st.session_state.pop(f"{key}_error", None)
    typed = st.session_state.get(f"{key}_amount")
    if not (typed or "").strip():
        return
    try:
        workflow.check_partial_refund(workflow.parse_amount(typed), row["refund_total"], row["refund_currency"])
    except workflow.WorkflowError as exc:
        st.session_state[f"{key}_error"] = str(exc)


def _forget(key: str, *suffixes: str) -> None:
    for suffix in suffixes:
        st.session_state.pop(f"{key}_{suffix}", None)


def _reject_reasons(db: Database, account: Account, return_id: str, key: str, options: workflow.DecisionOptions,
                    decision: str) -> list[dict] | None:
    """The reasons TikTok offers with the reject decision; asked separately (once) when TikTok's
    eligibility answer was not available. None when TikTok could not be asked."""
    if options.reject_reasons.get(decision):
        return list(options.reject_reasons[decision])
    cache = f"{key}_reasons"
    if cache not in st.session_state:
        try:
            st.session_state[cache] = workflow.reject_reasons(db, account, return_id)
        except workflow.WorkflowError as exc:
            st.error(_md(exc))
            return None
    return st.session_state[cache]


def _review(db: Database, row: Mapping, options: workflow.DecisionOptions, reasons: list[dict] | None,
            key: str) -> None:
    """Callback of "Review the decision": check it and build exactly what will be sent, or say why not."""
    state = st.session_state
    choice = state.get(f"{key}_decision") or ""
    returnless = choice == domain.RETURNLESS_REFUND
    try:
        plan = workflow.plan_action(
            db, row["shop_id"], row["return_id"], "APPROVE_RETURN" if returnless else choice,
            reject_reason=state.get(f"{key}_reason"), comment=state.get(f"{key}_comment"),
            partial_amount=state.get(f"{key}_amount"), buyer_keep_item=returnless or None,
            options=options, reject_reasons=reasons)
    except workflow.WorkflowError as exc:
        state[f"{key}_error"] = str(exc)
        return
    state[f"{key}_plan"] = _stable_plan(plan, key)


def _stable_plan(plan: workflow.ActionPlan, key: str) -> workflow.ActionPlan:
    """Reuse the idempotency key of an identical request in this open card, so a retry never acts twice."""
    keys: dict[str, str] = st.session_state.setdefault(f"{key}_keys", {})
    fingerprint = json.dumps({"path": plan.request["path"], "body": plan.request["body"]}, sort_keys=True)
    if fingerprint in keys:
        return dataclasses.replace(plan, idempotency_key=keys[fingerprint])
    keys[fingerprint] = plan.idempotency_key
    return plan


def _confirm(db: Database, account: Account, plan: workflow.ActionPlan, key: str, *, place: str, in_dialog: bool,
             locked: bool) -> None:
    """The decision in plain words (the exact request one click away), then Send (safe to repeat) or Back."""
    area = st.empty()  # emptied once sent: the outcome takes its place
    with area.container():
        with st.container(border=True):
            st.markdown(f"**{_md(plan.summary)}**")
            kind = domain.CANCELLATION_KIND if plan.cancellation else domain.RETURN_KIND
            st.caption(f"{domain.noun(kind).capitalize()} "
                       f"{_md(plan.return_id)} on {_md(account.name)}. Sending twice (a double click, a "
                       "retry) acts only once.")
            with st.expander("The exact request to TikTok"):
                st.json(plan.request)
        actor = None if locked else identity.ask_name(key)
        send_col, back_col = st.columns(2)
        send = send_col.button("Send to TikTok", key=f"{key}_send", type="primary", disabled=not actor,
                               icon=":material/send:", width="stretch")
        back_col.button("Back", key=f"{key}_back", icon=":material/arrow_back:", width="stretch", on_click=_forget,
                        args=(key, "plan"))
    if not send:
        return
    try:
        with st.spinner("Sending to TikTok and re-syncing the return…"):
            result = workflow.send_action(db, account, plan, actor or "")
    except workflow.WorkflowError as exc:
        st.error(_md(exc))
        return
    if not result.ok:
        # the plan (and its key) stays: "Send to TikTok" again retries safely
        st.error(_md(result.message), icon=":material/error:")
        return
    _forget(key, "plan", "keys", "reasons", "options", "decision", "reason", "comment", "amount")
    runtime.data_changed()  # every list reloads: the grid row shows the new status
    outcome = ("info" if result.repeated else "success",
               ("Already sent with this confirmation; nothing was sent again. " if result.repeated else "")
               + result.message)
    if in_dialog:
        # the dialog stays open on its outcome; closing it redraws the page behind with the new status
        area.empty()
        st.session_state[f"{key}_done"] = outcome
        st.session_state[f"wf_clear_{place}"] = True  # the list the dialog was opened from has moved on
        _show_done(outcome, in_dialog)  # in place, no toast: one would cover the dialog's × and the grid's ⋮
    else:
        st.session_state[f"wf_outcome_{place}"] = outcome
        st.session_state[f"wf_clear_{place}"] = True  # a list it was picked from has moved on
        st.rerun()  # the whole page, with the new status, and the outcome where the card is


def _show_done(outcome: tuple[str, str], in_dialog: bool) -> None:
    kind, text = outcome
    (st.success if kind == "success" else st.info)(_md(text), icon=":material/check_circle:")
    if in_dialog and st.button("Done", key="card_close", type="primary", icon=":material/done:"):
        st.rerun()


def show_outcome(place: str) -> None:
    """The outcome of a decision just sent from this place (once), where the card was."""
    outcome = st.session_state.pop(f"wf_outcome_{place}", None)
    if outcome:
        kind, text = outcome
        (st.success if kind == "success" else st.info)(_md(text), icon=":material/check_circle:")


# --- the grid's Actions dialog, and a list's selected rows --------------------------------------


def open_decision_dialog(db: Database, accounts: Sequence[Account], shop_id: str, return_id: str,
                         detail_query: dict | None = None, *, place: str = "dialog") -> None:
    """Open the card in a dialog (a list's Actions → Decide): a fresh start, whatever an earlier dialog left.

    `detail_query`: the return page's link, with the way back to the list (navigation.return_query).
    """
    key = widgets.form_key("act", shop_id, return_id)
    _forget(key, "done", "plan", "error", "records_tried")
    account = next((a for a in accounts if a.shop_id == shop_id), None)
    _decision_dialog(db, account, shop_id, return_id, detail_query or {"id": return_id, "shop": shop_id}, place)


@st.dialog("Decide on TikTok", width="large", on_dismiss="rerun")
def _decision_dialog(db: Database, account: Account | None, shop_id: str, return_id: str, detail_query: dict,
                     place: str) -> None:
    # a widget in here reruns only this dialog; on_dismiss reruns the page, so a closed dialog leaves fresh rows
    _card_head(return_id, detail_query)
    decision_card(db, account, {"shop_id": shop_id, "return_id": return_id}, place=place, in_dialog=True)


def _card_head(return_id: str, detail_query: dict) -> None:
    title, link = st.columns([3, 2], vertical_alignment="center")
    title.markdown(f"**Return {_md(return_id)}**")
    link.page_link(DETAIL_PAGE, label="Open the full return", icon=":material/open_in_new:", query_params=detail_query)


def clear_selection_after_decision(grid_key: str, place: str) -> None:
    """Before a list with row selection is drawn: forget the selection once a decision from it was sent, since
    selections hold row positions and the decided returns have left the list."""
    if st.session_state.pop(f"wf_clear_{place}", False):
        st.session_state[grid_key] = {"selection": {"rows": [], "columns": [], "cells": []}}


def decide_selected(db: Database, accounts: Sequence[Account], page: pd.DataFrame, rows: Sequence[int], *,
                    place: str, detail_query=None, in_dialog: bool = False) -> None:
    """Under a list of returns: one selected row gets its decision card, several are decided together.

    `detail_query(return_id, shop_id)` gives the return page's link (with the way back), if the list has one.
    `in_dialog`: the one selected row's card opens in the grid's Decide dialog (one screen, full screen on a
    phone), once per newly ticked row: closing it leaves the tick, so ticking more rows decides them together.
    """
    show_outcome(place)
    _bulk_outcome(place)
    picked = page.iloc[[r for r in rows if 0 <= r < len(page)]]
    keys = list(zip(picked["Account ID"], picked["Marketplace Return ID"], strict=True))
    opened = f"wf_opened_{place}"
    if len(keys) != 1:
        st.session_state.pop(opened, None)
    if len(keys) == 1 and in_dialog:
        shop_id, return_id = keys[0]
        if st.session_state.get(opened) != keys[0]:
            st.session_state[opened] = keys[0]
            open_decision_dialog(db, accounts, shop_id, return_id,
                                 detail_query(return_id, shop_id) if detail_query else None, place=place)
    elif len(keys) == 1:
        shop_id, return_id = keys[0]
        with st.container(border=True):
            _card_head(return_id, detail_query(return_id, shop_id) if detail_query else
                       {"id": return_id, "shop": shop_id})
            decision_card(db, next((a for a in accounts if a.shop_id == shop_id), None),
                          {"shop_id": shop_id, "return_id": return_id}, place=place)
    elif keys:
        with st.container(border=True):
            bulk_decisions(db, accounts, keys, place=place)


# --- several returns at once -------------------------------------------------------------------


def bulk_decisions(db: Database, accounts: Sequence[Account], keys: Sequence[tuple[str, str]], *, place: str) -> None:
    """Approve the selected returns, or reject them with one reason, in one confirmed step; each row's own result."""
    key = f"wf_bulk_{place}"
    by_shop = {a.shop_id: a for a in accounts}
    count = len(keys)
    st.markdown(f"**Decide {count} selected return{'s' if count != 1 else ''} together**")
    locked = identity.block_reason(None, identity.current_permissions(), need_actor=False)
    if locked:
        st.info(locked, icon=":material/lock:")
        return
    selection = tuple(keys)
    held: workflow.BulkPlan | None = st.session_state.get(f"{key}_plan")
    if held is not None and st.session_state.get(f"{key}_for") != selection:
        held = None  # the selection changed under an open confirmation: review again
        st.session_state.pop(f"{key}_plan", None)
    if held is None:
        _bulk_choose(db, by_shop, selection, key)
    else:
        _bulk_confirm(db, by_shop, held, key, place=place)


def _bulk_choose(db: Database, accounts: Mapping[str, Account], keys: tuple[tuple[str, str], ...], key: str) -> None:
    verdict = st.segmented_control("Decision for all", list(workflow.VERDICTS), key=f"{key}_verdict",
                                   format_func=workflow.VERDICTS.get)
    reasons: list[dict] | None = None
    if verdict == workflow.REJECT:
        cache = f"{key}_reasons"
        if st.session_state.get(cache, (None,))[0] != keys:
            try:
                with st.spinner("Asking TikTok for the reject reasons of each selected return…"):
                    st.session_state[cache] = (keys, workflow.common_reject_reasons(db, accounts, keys))
            except workflow.WorkflowError as exc:
                st.error(_md(exc))
                return
        reasons = st.session_state[cache][1]
        if not reasons:
            st.warning("TikTok offers no reject reason that fits every selected return; reject them in smaller "
                       "groups (for example, one Type at a time).")
            return
        texts = {r["name"]: r.get("text") or r["name"] for r in reasons}
        st.selectbox("Reject reason for all (from TikTok)", list(texts), index=None, key=f"{key}_reason",
                     format_func=texts.get, placeholder="Choose TikTok's reason")
        st.text_area("Comment to TikTok (optional, for all)", key=f"{key}_comment", height=68,
                     max_chars=workflow.MAX_COMMENT_LENGTH)
    if error := st.session_state.pop(f"{key}_error", None):
        st.error(_md(error), icon=":material/error:")
    actor = identity.ask_name(key)
    st.button(f"Review {len(keys)} decision{'s' if len(keys) != 1 else ''}", key=f"{key}_review", type="primary",
              icon=":material/fact_check:", disabled=not actor or verdict is None, on_click=_bulk_review,
              args=(db, keys, reasons, key))


def _bulk_review(db: Database, keys: tuple[tuple[str, str], ...], reasons: list[dict] | None, key: str) -> None:
    state = st.session_state
    try:
        plan = workflow.plan_bulk(db, keys, state.get(f"{key}_verdict") or "", reject_reason=state.get(f"{key}_reason"),
                                  reject_reasons=reasons, comment=state.get(f"{key}_comment"))
    except workflow.WorkflowError as exc:
        state[f"{key}_error"] = str(exc)
        return
    state[f"{key}_plan"], state[f"{key}_for"] = plan, keys
    state.pop(f"{key}_outcome", None)


def _bulk_confirm(db: Database, accounts: Mapping[str, Account], bulk: workflow.BulkPlan, key: str, *,
                  place: str) -> None:
    with st.container(border=True):
        st.markdown(f"**{_md(bulk.summary)}**")
        lines = [f"- {_md(plan.return_id)}: {_md(plan.summary)}" for plan in bulk.plans]
        lines += [f"- {_md(o.return_id)}: :orange[left out: {_md(o.message)}]" for o in bulk.left_out]
        st.markdown("\n".join(lines))
        st.caption("Each return is sent on its own, with its own idempotency key: sending again never acts twice.")
    actor = identity.ask_name(key)
    send_col, back_col = st.columns(2)
    send = send_col.button(f"Send {len(bulk.plans)} to TikTok", key=f"{key}_send", type="primary", width="stretch",
                           icon=":material/send:", disabled=not actor or not bulk.plans)
    back_col.button("Back", key=f"{key}_back", icon=":material/arrow_back:", width="stretch", on_click=_forget,
                    args=(key, "plan"))
    if not send:
        return
    try:
        with st.spinner(f"Sending {len(bulk.plans)} decisions to TikTok, one at a time…"):
            outcomes = workflow.send_bulk(db, accounts, bulk, actor or "")
    except workflow.WorkflowError as exc:
        st.error(_md(exc))
        return
    runtime.data_changed()
    failed = [o for o in outcomes if not o.ok]
    if failed:
        # the failed ones stay planned with their keys: sending again retries them safely, the rest are done
        retry = [p for p in bulk.plans if any(o.return_id == p.return_id and o.shop_id == p.shop_id for o in failed)]
        st.session_state[f"{key}_plan"] = dataclasses.replace(bulk, plans=tuple(retry), left_out=())
    else:
        st.session_state.pop(f"{key}_plan", None)
    st.session_state[f"{key}_outcome"] = (bulk.verdict, outcomes)
    st.session_state[f"wf_clear_{place}"] = True  # the decided returns left the list: start with none selected
    st.rerun()


def _bulk_outcome(place: str) -> None:
    """What each return of the bulk decision just sent came to (once), where the form was."""
    held = st.session_state.pop(f"wf_bulk_{place}_outcome", None)
    if held is None:
        return
    verdict, outcomes = held
    summary = workflow.bulk_summary(verdict, outcomes)
    if all(o.ok for o in outcomes):
        st.success(_md(summary), icon=":material/check_circle:")
    else:
        st.warning(_md(summary), icon=":material/warning:")
    st.dataframe(pd.DataFrame([{"Marketplace Return ID": o.return_id, "Result": "Done" if o.ok else "Not done",
                                "Status now": o.status or "", "What TikTok said": o.message} for o in outcomes]),
                 hide_index=True, width="stretch", column_config={
                     # the outcome is a sentence: it takes the room left, wrapped, not cut
                     "Marketplace Return ID": st.column_config.TextColumn(width=170),
                     "Result": st.column_config.TextColumn(width=80),
                     "Status now": st.column_config.TextColumn(width=90),
                     "What TikTok said": st.column_config.TextColumn(width="large", help="TikTok's answer for each "
                                                                      "return, in full")},
                 row_height=66)  # Streamlit wraps cell text only in rows taller than 4 rem (64 px)


def _attr(url: str) -> str:
    """An address inside an HTML attribute."""
    return url.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
