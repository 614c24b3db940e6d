"""Decision rules: write a rule, replay it on the returns already synced (backtest), and only then switch it
on. A rule that is on decides, after each sync, the new returns that wait for the seller; the kill switch
stops them all. Every change is kept in the rules' history, every decision in the return's own history.
"""

import streamlit as st

from app_ui import identity, loaders, navigation, runtime
from app_ui.filters import money
from app_ui.formatting import local_time, md_escape, time_column
from returns_core import domain, reason_groups, rules
from returns_core.filters import parse_skus
from returns_core.store import rules as rule_rows
from returns_core.store.db import utcnow

FLASH_KEY = "rules_flash"
PICK_KEY = "rules_pick"
BACKTEST_KEY = "rules_backtest"
NEW = "New rule"
KEEPS = {"Either": None, "Yes: no parcel comes back": True, "No: the item comes back": False}
SHOWN_ROWS = 50


def _done(message: str, ok: bool = True) -> None:
    """Show the outcome on the next run, above the widgets that caused it."""
    st.session_state[FLASH_KEY] = ("ok" if ok else "error", message)


def show_flash() -> None:
    if flash := st.session_state.pop(FLASH_KEY, None):
        kind, text = flash
        (st.success if kind == "ok" else st.error)(text)


def _actor() -> str:
    return identity.current_actor() or ""


# --- the kill switch --------------------------------------------------------------------------------


def flip_kill_switch(on: bool) -> None:
    try:
        rules.set_kill_switch(runtime.db(), on, _actor())
        _done("Every rule is stopped: none acts until you let them again." if on
              else "Rules that are on act again after the next sync.")
    except rules.RuleError as exc:
        _done(md_escape(exc), ok=False)


def kill_switch_section(locked: str | None) -> None:
    """One button that stops every rule at once, and the state it leaves."""
    if rules.kill_switch(runtime.db()):
        st.error("**All rules are stopped** (kill switch). No rule acts on any return until this is lifted.",
                 icon=":material/block:")
        st.button("Let the rules act again", key="rules_kill_off", icon=":material/play_arrow:",
                  disabled=locked is not None, on_click=flip_kill_switch, args=(False,))
    else:
        st.button("Stop all rules now", key="rules_kill_on", icon=":material/block:", type="primary",
                  disabled=locked is not None, on_click=flip_kill_switch, args=(True,),
                  help="The kill switch: from this moment no rule starts another decision, also in a sync already "
                       "under way (a decision already being sent to TikTok finishes).")


# --- the rules --------------------------------------------------------------------------------------


def switch(rule_id: int, on: bool) -> None:
    try:
        rule = rules.set_enabled(runtime.db(), rule_id, on, _actor())
        _done(f"**{md_escape(rule.name)}** is on: it acts on new returns after each sync." if on
              else f"**{md_escape(rule.name)}** is off.")
    except rules.RuleError as exc:
        _done(md_escape(exc), ok=False)


def remove(rule_id: int, name: str) -> None:
    try:
        rules.retire_rule(runtime.db(), rule_id, _actor())
        st.session_state.pop(PICK_KEY, None)
        _done(f"Removed **{md_escape(name)}**; its history and decisions stay below.")
    except rules.RuleError as exc:
        _done(md_escape(exc), ok=False)


def forget_backtest() -> None:
    st.session_state.pop(BACKTEST_KEY, None)


def edit(rule_id: int) -> None:
    st.session_state[PICK_KEY] = rule_id
    st.session_state.pop(BACKTEST_KEY, None)


def rule_card(rule: rules.Rule, today: int, names: dict[str, str], locked: str | None) -> None:
    """One rule: what it does, whether it is on (and for which accounts' modes), today's decisions."""
    with st.container(border=True):
        text_col, buttons = st.columns([3, 2], vertical_alignment="center")
        badge = ":green-badge[On]" if rule.enabled else ":gray-badge[Off]"
        text_col.markdown(f"{badge} **{md_escape(rule.name)}** · #{rule.id}  \n{md_escape(rule.describe())}")
        if rule.enabled:
            modes = ", ".join(f"{md_escape(names.get(shop, shop))}: {mode} mode"
                              for shop, mode in sorted(rule.enabled_modes.items()))
            text_col.caption(f"On since {local_time(rule.enabled_at)} by {md_escape(rule.enabled_by)}, for {modes}. "
                             f"Today: {today:,} of {rule.daily_cap:,}.")
        else:
            text_col.caption(f"Changed {local_time(rule.updated_at)} by {md_escape(rule.updated_by)}. "
                             "Backtest it, then switch it on.")
        with buttons:
            row = st.container(horizontal=True, gap="small")
            row.button("Switch off" if rule.enabled else "Switch on", key=f"rules_switch_{rule.id}",
                       icon=":material/toggle_on:" if rule.enabled else ":material/toggle_off:",
                       disabled=locked is not None, on_click=switch, args=(rule.id, not rule.enabled))
            row.button("Edit", key=f"rules_edit_{rule.id}", icon=":material/edit:", on_click=edit, args=(rule.id,))
            row.button("Remove", key=f"rules_remove_{rule.id}", icon=":material/delete:", type="tertiary",
                       disabled=locked is not None, on_click=remove, args=(rule.id, rule.name))


def rules_section(all_rules: list[rules.Rule], names: dict[str, str], locked: str | None) -> None:
    st.subheader("Rules", anchor=False)
    if not all_rules:
        st.info("No rule yet. Write one below, replay it on your synced returns, then switch it on.",
                icon=":material/rule_settings:")
        return
    today = rule_rows.decided_today(runtime.db(), *rules.day_span(utcnow()))
    st.caption("Tried oldest first after each sync; a return is decided by one rule at most, once.")
    for rule in all_rules:
        rule_card(rule, today.get(rule.id, 0), names, locked)


# --- writing a rule, and its backtest -----------------------------------------------------------------


def _draft(rule_id: int | None, names: dict[str, str]) -> rules.Rule:
    """The rule as the form holds it (RuleError when it cannot be used)."""
    k = _key_prefix(rule_id)
    by_label = {f"{name} ({shop})": shop for shop, name in names.items()}
    # one per line: product names hold commas ("Blender, 1.5 L")
    products = (st.session_state.get(f"{k}products") or "").splitlines()
    try:
        skus = parse_skus(st.session_state.get(f"{k}skus") or "")
    except ValueError as exc:
        raise rules.RuleError(str(exc)) from None
    return rules.make_rule(
        name=st.session_state.get(f"{k}name") or "", action=st.session_state.get(f"{k}action") or rules.APPROVE,
        daily_cap=st.session_state.get(f"{k}cap") or 0, reject_reason=st.session_state.get(f"{k}reason"),
        shop_ids=[by_label[label] for label in st.session_state.get(f"{k}accounts") or () if label in by_label],
        types=st.session_state.get(f"{k}types") or (), reasons=st.session_state.get(f"{k}reasons") or (),
        groups=st.session_state.get(f"{k}groups") or (), max_refund=st.session_state.get(f"{k}max") or "",
        currency=st.session_state.get(f"{k}currency") or "", skus=skus, products=products,
        buyer_keeps_item=KEEPS[st.session_state.get(f"{k}keeps") or "Either"], rule_id=rule_id)


def _key_prefix(rule_id: int | None) -> str:
    return f"rules_form_{rule_id or 'new'}_"


def run_backtest(rule_id: int | None, names: dict[str, str]) -> None:
    try:
        draft = _draft(rule_id, names)
        days = int(st.session_state.get(f"{_key_prefix(rule_id)}days") or rules.DEFAULT_DAYS)
        st.session_state[BACKTEST_KEY] = rules.backtest(runtime.db(), draft, days=days, actor=_actor())
    except rules.RuleError as exc:
        st.session_state.pop(BACKTEST_KEY, None)
        _done(md_escape(exc), ok=False)


def save(rule_id: int | None, names: dict[str, str]) -> None:
    try:
        kept = rules.save_rule(runtime.db(), _draft(rule_id, names), _actor())
        st.session_state[PICK_KEY] = kept.id
        _done(f"Saved **{md_escape(kept.name)}** (#{kept.id}), switched off. Backtest it, then switch it on.")
    except rules.RuleError as exc:
        _done(md_escape(exc), ok=False)


def rule_form(rule: rules.Rule | None, names: dict[str, str], locked: str | None) -> None:
    """The rule's conditions, action and cap; Backtest replays the form as it is, saved or not."""
    rule_id = rule.id if rule else None
    k = _key_prefix(rule_id)
    c = rule.conditions if rule else rules.Conditions()
    labels = {shop: f"{name} ({shop})" for shop, name in names.items()}
    with st.form(f"rules_form_{rule_id or 'new'}", border=True):
        st.text_input("Name", value=rule.name if rule else "", key=f"{k}name", max_chars=rules.MAX_NAME_LENGTH,
                      placeholder="Small changed-mind refunds")
        a1, a2, a3 = st.columns(3)
        a1.multiselect("Accounts", list(labels.values()), default=[labels[s] for s in c.shop_ids if s in labels],
                       key=f"{k}accounts", placeholder="Any account")
        a2.multiselect("Type", list(domain.TYPES), default=list(c.types), key=f"{k}types", placeholder="Any type")
        a3.multiselect("Reason group", list(reason_groups.GROUPS), default=list(c.reason_groups), key=f"{k}groups",
                       placeholder="Any group", help="The groups of Reason Analytics (its rules are shown there).")
        reasons = loaders.reason_options(())
        st.multiselect("Reason", sorted(set(reasons) | set(c.reasons)), default=list(c.reasons), key=f"{k}reasons",
                       placeholder="Any reason", help="TikTok's reason text, as the grid shows it.")
        b1, b2, b3 = st.columns([2, 1, 2])
        b1.text_input("Refund up to", value="" if c.max_refund is None else f"{c.max_refund:.2f}", key=f"{k}max",
                      placeholder="e.g. 25.00", help="The request's refund total, at most this much.")
        b2.text_input("Currency", value=c.currency or "", key=f"{k}currency", max_chars=3, placeholder="USD")
        b3.radio("Buyer keeps the item", list(KEEPS), horizontal=True, key=f"{k}keeps",
                 index=list(KEEPS.values()).index(c.buyer_keeps_item),
                 help="Yes: a refund-only request, or one TikTok lets the buyer keep the item.")
        s1, s2 = st.columns(2)
        s1.text_input("SKU", value=" ".join(c.skus), key=f"{k}skus", placeholder="One or more, separated by spaces")
        s2.text_area("Product", value="\n".join(c.products), key=f"{k}products", height=68,
                     placeholder="One product name per line")
        d1, d2, d3 = st.columns([3, 2, 1])
        d1.selectbox("Action", list(rules.ACTIONS), format_func=rules.ACTIONS.get, key=f"{k}action",
                     index=list(rules.ACTIONS).index(rule.action) if rule else 0)
        d2.text_input("Reject reason (for Reject)", value=(rule.reject_reason or "") if rule else "", key=f"{k}reason",
                      help="TikTok's reject reason name, as the decision card lists it; TikTok must offer it for "
                           "the return, or the rule leaves it to a person.")
        d3.number_input("Daily cap", min_value=1, max_value=rules.MAX_DAILY_CAP, step=1,
                        value=rule.daily_cap if rule else 20, key=f"{k}cap",
                        help="At most this many returns a day (UTC), all accounts together.")
        f1, f2, f3 = st.columns([1, 2, 2], vertical_alignment="bottom")
        f1.number_input("Replay days", min_value=1, max_value=rules.MAX_DAYS, value=rules.DEFAULT_DAYS, step=1,
                        key=f"{k}days")
        f2.form_submit_button("Backtest on synced returns", icon=":material/history:", type="primary",
                              on_click=run_backtest, args=(rule_id, names), width="stretch")
        f3.form_submit_button("Save rule (switched off)", icon=":material/save:", disabled=locked is not None,
                              on_click=save, args=(rule_id, names), width="stretch")


def backtest_section(result: rules.Backtest, names: dict[str, str]) -> None:
    """What the replayed rule would have done: how many, which, the money, the risk, the deadlines."""
    st.subheader(f"Backtest #{result.id}: {md_escape(result.rule.name)}", anchor=False)
    st.caption(f"{md_escape(result.rule.describe())}. Replayed on the returns created in the last {result.days} days "
               f"({local_time(result.since)} – {local_time(result.until)}), each day's first "
               f"{result.rule.daily_cap:,} by creation.")
    f = result.figures
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Would have decided", f"{result.decided:,}",
              help=f"{result.matched:,} matched; {result.over_cap:,} more were over the daily cap.")
    m2.metric("Refund it would have paid", ", ".join(money(r.Refund, r.Currency) for r in f.money.itertuples())
              if result.pays_refunds and not f.money.empty else "none",
              help="Per currency, the refund totals of the returns it decides (an approve refunds them).")
    m3.metric("At risk", f"{f.at_risk:,}",
              help=f"Of those, in reality {f.ended_rejected:,} ended Rejected and {f.in_arbitration:,} went to "
                   "arbitration (each return counted once).")
    m4.metric("Missed deadlines avoided", f"{f.missed_deadlines:,}",
              help="Returns whose seller deadline passed unanswered: still waiting past Due By, seen by a sync "
                   "moved on by TikTok at or after its deadline, or TikTok's records (when fetched) say TikTok "
                   "decided by itself.")
    if f.deadline_unseen:
        st.caption(f"Missed deadlines: {f.deadline_unseen:,} of these returns were first synced after the seller's "
                   "turn had passed, so whether TikTok decided them by itself is not known here (TikTok's search "
                   "does not say who decided; a return's TikTok records do, on its page). Syncs from now on see "
                   "each return wait, and count the deadlines missed.")
    if result.over_cap:
        st.caption(f"{result.matched:,} returns matched; the daily cap left {result.over_cap:,} of them to people.")
    if result.decided:
        st.page_link(navigation.GRID_PAGE, label=f"Show these {result.decided:,} returns in the grid",
                     icon=":material/table_rows:", query_params={"backtest": str(result.id)})
        if result.pays_refunds and len(f.money) > 1:
            st.dataframe(f.money, hide_index=True, key="rules_backtest_money",
                         column_config={"Refund": st.column_config.NumberColumn(format="%.2f")})
        rows = rule_rows.backtest_rows(runtime.db(), result.id, SHOWN_ROWS)
        shown = rows.assign(**{
            "Account": [names.get(s, s) for s in rows["Account ID"]],
            "Refund": [money(a, c) for a, c in zip(rows["Refund"], rows["Currency"], strict=True)],
            "Status now": rows["Status now"].fillna("Unmapped"),
            "Arbitration": rows["Arbitration"].fillna(""),
        }).drop(columns=["Account ID", "Currency"])
        st.dataframe(shown, hide_index=True, key="rules_backtest_rows", width="stretch",
                     column_config={"Created At": time_column("Created")})
        if result.decided > SHOWN_ROWS:
            st.caption(f"The newest {SHOWN_ROWS} of {result.decided:,}; the grid shows them all.")
    else:
        st.info("It would have decided no return in that time.", icon=":material/search_off:")


# --- what the rules did, and the history --------------------------------------------------------------


def decisions_section(names: dict[str, str]) -> None:
    st.subheader("What the rules did", anchor=False)
    done = rule_rows.decisions_frame(runtime.db())
    if done.empty:
        st.caption("No rule has decided a return yet.")
        return
    shown = done.assign(**{
        "Rule": [f"#{i} {n}" for i, n in zip(done["Rule"], done["Rule name"], strict=True)],
        "Account": [names.get(s, s) for s in done["Account ID"]],
        "Decision": [domain.DECISION_LABELS.get(d, d) if d else "Flagged for a human" for d in done["Decision"]],
    })[["When", "Rule", "Return ID", "Account", "Decision", "Outcome", "What happened"]]
    st.dataframe(shown, hide_index=True, key="rules_decisions", width="stretch",
                 column_config={"When": time_column(), "What happened": st.column_config.TextColumn(width="large")})
    st.caption("Each decision is also in the return's own history, under the rule's name.")


def history_section() -> None:
    st.subheader("Changes to the rules", anchor=False)
    changes = rule_rows.history_frame(runtime.db())
    if changes.empty:
        st.caption("No change yet.")
        return
    st.dataframe(changes, hide_index=True, key="rules_history", width="stretch",
                 column_config={"When": time_column()})


def render() -> None:
    """Draw the page."""
    st.title("Decision rules")
    st.caption("A rule decides returns the way a manager would, only after you have replayed it on the returns "
               "already synced. Once on, it acts after each sync on returns first synced after it was switched on "
               "that wait for your decision: TikTok's eligibility is asked first, each decision is sent once and "
               "kept in the return's history under the rule's name. It never acts on a return a person worked on, "
               "beyond its daily cap, or on an account whose sandbox or live mode changed since it was switched on.")
    permissions = identity.current_permissions()
    locked = identity.block_reason(None, permissions, need_actor=False)
    if locked:
        st.info(md_escape(locked), icon=":material/lock:")
    elif identity.ask_name("rules") is None:
        locked = "Say who you are first: every change to a rule is recorded with who made it."
    show_flash()
    kill_switch_section(locked)
    names = {a.shop_id: a.name for a in loaders.accounts()}
    all_rules = rules.list_rules(runtime.db())
    rules_section(all_rules, names, locked)

    by_id = {r.id: r for r in all_rules}
    picked = st.session_state.get(PICK_KEY)
    options = [NEW] + [r.id for r in all_rules]
    if picked not in by_id:
        st.session_state[PICK_KEY] = NEW
    st.subheader("Write a rule", anchor=False)
    st.selectbox("Rule", options, key=PICK_KEY, on_change=forget_backtest,
                 format_func=lambda o: o if o == NEW else f"#{o} {by_id[o].name}")
    rule = by_id.get(st.session_state[PICK_KEY])
    rule_form(rule, names, locked)
    result = st.session_state.get(BACKTEST_KEY)
    if result is not None:
        backtest_section(result, names)
    decisions_section(names)
    history_section()


render()
