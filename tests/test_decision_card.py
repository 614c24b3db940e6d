"""AppTest on app.py: the one decision card, on the return's page, against the sandbox over real HTTP.

What the buyer asks (type, money and its breakdown, items with quantities), why (reason, the buyer's
own comment and photos from TikTok's records), by when (a countdown and the time in the viewer's zone,
and what TikTok does if nobody answers), the decisions TikTok accepts now (none pre-selected), the
amount checks before anything is sent, and who decides.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from app_ui.formatting import local_time
from returns_core import domain, review
from returns_core.accounts import list_accounts
from returns_core.store.returns import find_return
from returns_core.sync import sync_return
from returns_core.tiktok.client import DECISION_ELIGIBILITY_PATH
from returns_core.tiktok_session import tiktok_session
from tests import test_app_workflow
from tests.apptest import button, new_session, texts
from tests.test_app_workflow import seller_decisions_on_tiktok, shown

sandbox_db = test_app_workflow.sandbox_db  # the fixture: the store the app opens, the sandbox's shops connected

ZONE = "America/New_York"


def waiting_return(db, sandbox, action: str, *, want=lambda obj, records: True):
    """(account, TikTok's return object, its records) of a return TikTok waits on with `action`, synced."""
    for account in list_accounts(db):
        with tiktok_session(db, account) as client:
            for obj in sandbox.returns_for(account.shop_id):
                actions = [a.get("action") for a in obj.get("seller_next_action_response") or ()]
                if action not in actions:
                    continue
                records = client.get_return_records(obj["return_id"])
                if want(obj, records):
                    sync_return(db, account, obj["return_id"])
                    return account, obj, records
    raise AssertionError(f"the sandbox has no return waiting with {action} as this test needs")


def with_buyer_photos(obj: dict, records: list[dict]) -> bool:
    return any(r.get("role") == "BUYER" and r.get("note") and r.get("images") for r in records)


def open_card(shop_id: str, return_id: str, *, actor: str | None = "Mia", **session):
    at = new_session(actor=actor, shop=shop_id, id=return_id, **session)
    at.context = {"timezone": ZONE}
    at.run()
    at.switch_page("app_pages/detail.py").run()
    assert not at.exception, at.exception
    return at


def card_key(shop_id: str, return_id: str) -> str:
    return f"wf_act_{shop_id}_{return_id}"


def test_the_card_shows_what_the_buyer_asks_why_and_by_when(sandbox_db, sandbox):
    account, obj, records = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN", want=with_buyer_photos)
    stored = find_return(sandbox_db, obj["return_id"], account.shop_id)
    at = open_card(account.shop_id, obj["return_id"])
    text = shown(at)
    money = obj["refund_amount"]
    currency = money["currency"]
    # what: the type, the amount with its currency and TikTok's breakdown, each item with its quantity
    assert f"**Return & Refund** · the buyer asks for **{stored['refund_total']:,.2f} {currency}**" in text
    assert f"Breakdown: Items {stored['refund_subtotal']:,.2f} {currency} · Shipping" in text
    units = Counter((line["product_name"], line["sku_name"], line["seller_sku"], line["product_image"]["url"])
                    for line in obj["return_line_items"])
    for (product, variant, sku, image), count in units.items():
        assert f'<img src="{image}"' in text
        assert f"**{product} · {variant}** × {count} · SKU {sku} · " in text
    # why: the reason in words, and the buyer's own comment and photos from TikTok's records
    assert f"**Why:** {obj['return_reason_text']}" in text
    request = next(r for r in records if r.get("role") == "BUYER" and r.get("images"))
    assert f"> {request['note']}" in text
    for image in request["images"]:
        assert f'<img src="{image["url"]}"' in text
    # by when: a countdown, the deadline in the viewer's zone, and what TikTok does if nobody answers
    assert re.search(r"Due in \d+ (d \d+ h|h \d+ min|min)", text)
    assert f"by {local_time(stored['due_by'], zone=ZONE)}" in text and f"({ZONE})" in text
    assert "If nobody answers by then, TikTok approves the return by itself" in text


def test_the_decisions_are_those_tiktok_accepts_now_and_none_is_preselected(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN")
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"])
    decision = at.radio(key=f"{key}_decision")
    assert decision.options == [domain.DECISION_LABELS["APPROVE_RETURN"], domain.RETURNLESS_REFUND_LABEL,
                                domain.DECISION_LABELS["OFFER_PARTIAL_REFUND"], domain.DECISION_LABELS["REJECT_RETURN"]]
    assert decision.value is None
    assert button(at, "Review the decision").disabled
    assert "TikTok accepts these now" in texts(at)
    decision.set_value("REJECT_RETURN").run()
    assert at.selectbox(key=f"{key}_reason").value is None  # TikTok's reasons, none pre-selected either


def test_a_return_decided_elsewhere_since_the_sync_offers_nothing_and_says_why(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_REFUND")
    with tiktok_session(sandbox_db, account) as client:  # decided on TikTok's seller center meanwhile
        client.approve_return(obj["return_id"], "APPROVE_REFUND", idempotency_key="seller-center-1")
    at = open_card(account.shop_id, obj["return_id"])
    text = shown(at)
    assert not at.radio
    assert "TikTok accepts no decision on this return now: it changed since the last sync" in text
    assert "Not possible now: Approve the refund: Return" in text and "already decided" in text


def test_when_tiktok_cannot_say_the_card_falls_back_to_the_state_rules_and_says_so(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_REFUND")
    sandbox.faults.inject("503", count=5, path_prefix=DECISION_ELIGIBILITY_PATH, retry_after=0)
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"])
    assert "by the return's state" in texts(at)
    assert "TikTok could not say which decisions it accepts now" in shown(at)
    assert at.radio(key=f"{key}_decision").options == ["Approve the refund", "Reject the refund request"]
    # the reject reasons then come from Get Reject Reasons
    at.radio(key=f"{key}_decision").set_value("REJECT_REFUND").run()
    assert at.selectbox(key=f"{key}_reason").options


@pytest.mark.parametrize(("typed", "refusal"), [
    ("99999", "A partial refund must be less than the refund total"),
    ("abc", "abc is not an amount: write it like 12.50 or 12,50."),
    ("1,234.50", "without a thousands separator"),
])
def test_a_partial_refund_amount_is_checked_before_anything_is_sent(sandbox_db, sandbox, typed, refusal):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN")
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"])
    at.radio(key=f"{key}_decision").set_value("OFFER_PARTIAL_REFUND").run()
    at.text_input(key=f"{key}_amount").input(typed)
    button(at, "Review the decision").click().run()
    assert refusal in shown(at)
    assert f"{key}_plan" not in at.session_state  # nothing to confirm, nothing sent
    assert not [b for b in at.button if b.label == "Send to TikTok"]
    assert seller_decisions_on_tiktok(sandbox, account.shop_id, obj["return_id"]) == 0


def test_a_decimal_comma_is_understood_and_the_offer_goes_to_tiktok_in_its_words(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN")
    currency = obj["refund_amount"]["currency"]
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"])
    at.radio(key=f"{key}_decision").set_value("OFFER_PARTIAL_REFUND").run()
    at.text_input(key=f"{key}_amount").input("1,50")
    button(at, "Review the decision").click().run()
    assert f"**Offer the buyer a partial refund of 1.50 {currency} (of " in shown(at)
    request = next(j.value for j in at.json if "idempotency_key" in j.value)
    assert '"amount": "1.50"' in request  # the exact request, behind its disclosure
    assert "The exact request to TikTok" in [e.label for e in at.expander]
    button(at, "Send to TikTok").click().run()
    assert not at.exception, at.exception
    after = find_return(sandbox_db, obj["return_id"], account.shop_id)
    assert after["marketplace_status"] == "AWAITING_BUYER_RESPONSE" and after["status"] == domain.PENDING
    assert f"{domain.DECISION_LABELS['OFFER_PARTIAL_REFUND']}: sent. Status is now Pending" in shown(at)
    assert not at.toast  # the outcome shows in place; a toast repeating it would cover the page
    assert seller_decisions_on_tiktok(sandbox, account.shop_id, obj["return_id"]) == 1


def test_without_a_name_the_card_asks_for_one_and_the_history_records_it(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_REFUND")
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"], actor=None)
    at.radio(key=f"{key}_decision").set_value("APPROVE_REFUND").run()
    assert button(at, "Review the decision").disabled  # not before saying who decides
    at.text_input(key=f"{key}_name").input("   ")
    button(at, "Use this name").click().run()
    assert "Enter your name" in texts(at)
    at.text_input(key=f"{key}_name").input("Noor Haddad")
    button(at, "Use this name").click().run()
    cookie = [h.proto.body for h in at.get("html") if "returns_desk_actor=" in h.proto.body]
    assert len(cookie) == 1 and '"Noor Haddad"' in cookie[0]  # the browser is told to remember it
    assert [p.proto.popover.label for p in at.get("popover")] == ["Acting as Noor Haddad"]  # the sidebar
    button(at, "Review the decision").click().run()
    button(at, "Send to TikTok").click().run()
    assert not at.exception, at.exception
    history = review.history_frame(sandbox_db, account.shop_id, obj["return_id"])
    assert list(history.loc[history["What"] == "Sent to TikTok", "Who"]) == ["Noor Haddad"]


def test_a_name_cannot_break_out_of_the_script_that_remembers_it(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_REFUND")
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"], actor=None)
    at.text_input(key=f"{key}_name").input('Mia</script><script>alert("x")</script>')
    button(at, "Use this name").click().run()
    [cookie] = [h.proto.body for h in at.get("html") if "returns_desk_actor=" in h.proto.body]
    assert cookie.count("</script>") == 1 and "\\u003c/script>" in cookie


def test_a_changed_amount_replaces_the_refusal_of_the_old_one_without_review(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN")
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"])
    at.radio(key=f"{key}_decision").set_value("OFFER_PARTIAL_REFUND").run()
    at.text_input(key=f"{key}_amount").input("99999")
    button(at, "Review the decision").click().run()
    assert "99,999.00" in shown(at) and "is not" in shown(at)
    at.text_input(key=f"{key}_amount").input("1,50").run()  # corrected: the refusal goes
    assert not at.error
    at.text_input(key=f"{key}_amount").input("abc").run()  # a wrong amount is refused as it is applied
    assert [e.value for e in at.error] == ["abc is not an amount: write it like 12.50 or 12,50."]


def test_a_full_refund_without_a_return_is_its_own_choice_and_sends_buyer_keep_item(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN")
    key = card_key(account.shop_id, obj["return_id"])
    at = open_card(account.shop_id, obj["return_id"])
    assert not at.checkbox  # no second "keeps the item" path under "Approve the return"
    at.radio(key=f"{key}_decision").set_value(domain.RETURNLESS_REFUND).run()
    button(at, "Review the decision").click().run()
    assert "the buyer keeps the item and the request closes" in shown(at)
    request = next(j.value for j in at.json if "idempotency_key" in j.value)
    assert '"decision": "APPROVE_RETURN"' in request and '"buyer_keep_item": true' in request
    button(at, "Send to TikTok").click().run()
    assert not at.exception, at.exception
    assert f"{domain.RETURNLESS_REFUND_LABEL}: sent." in shown(at)
    assert not at.toast


def test_a_replacement_is_called_a_replacement_in_the_card(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_REPLACEMENT")
    at = open_card(account.shop_id, obj["return_id"])
    assert "**Replacement** · the buyer asks for" in shown(at)


def test_tiktoks_verbatim_status_is_one_hover_away_not_inline(sandbox_db, sandbox):
    account, obj, _ = waiting_return(sandbox_db, sandbox, "SELLER_RESPOND_RETURN")
    at = open_card(account.shop_id, obj["return_id"])
    [line] = [m for m in at.markdown if m.value.startswith("Status **")]
    assert obj["return_status"] not in line.value
    assert obj["return_status"] in line.proto.help
