"""Domain rules from DESIGN.md: type and status mapping, transitions, decisions."""

from decimal import Decimal

import pytest

from returns_core import domain


@pytest.mark.parametrize(
    ("tiktok", "shown"),
    [("REFUND", "Refund"), ("RETURN_AND_REFUND", "Return & Refund"), ("REPLACEMENT", "Return"), ("EXCHANGE", "Return")],
)
def test_type_mapping_follows_design(tiktok, shown):
    assert domain.display_type(tiktok) == shown


def test_unknown_type_is_kept_verbatim():
    assert domain.display_type("TRADE_IN") == "TRADE_IN"


def test_every_design_status_maps_and_each_status_has_its_rows():
    expected = {
        "Requested": {"RETURN_OR_REFUND_REQUEST_PENDING", "REPLACEMENT_REQUEST_PENDING", "EXCHANGE_REQUEST_PENDING"},
        "Pending": {"AWAITING_BUYER_SHIP", "BUYER_SHIPPED_ITEM", "AWAITING_BUYER_RESPONSE"},
        "Accepted": {"RETURN_OR_REFUND_REQUEST_SUCCESS", "REPLACEMENT_REQUEST_REFUND_SUCCESS",
                     "EXCHANGE_REQUEST_REFUND_SUCCESS"},
        "Refund": {"RETURN_OR_REFUND_REQUEST_COMPLETE", "REPLACEMENT_REQUEST_COMPLETE", "EXCHANGE_REQUEST_COMPLETE"},
        "Rejected": {"REFUND_OR_RETURN_REQUEST_REJECT", "REJECT_RECEIVE_PACKAGE", "REPLACEMENT_REQUEST_REJECT"},
        "Cancelled": {"RETURN_OR_REFUND_REQUEST_CANCEL", "REPLACEMENT_REQUEST_CANCEL", "EXCHANGE_REQUEST_CANCEL"},
    }
    for status, tiktok_statuses in expected.items():
        assert {k for k, v in domain.STATUS_MAP.items() if v == status} == tiktok_statuses


def test_unknown_status_is_unmapped_not_guessed():
    assert domain.mapped_status("RETURN_OR_REFUND_REQUEST_ON_HOLD") is None
    assert domain.is_unmapped("RETURN_OR_REFUND_REQUEST_ON_HOLD")
    assert not domain.is_unmapped("AWAITING_BUYER_SHIP")
    assert not domain.is_mismatch("Pending", "RETURN_OR_REFUND_REQUEST_ON_HOLD")


def test_mismatch_when_status_disagrees_with_tiktok():
    assert domain.is_mismatch("Accepted", "AWAITING_BUYER_SHIP")
    assert not domain.is_mismatch("Pending", "AWAITING_BUYER_SHIP")


@pytest.mark.parametrize(
    ("current", "target", "tiktok"),
    [
        ("Requested", "Pending", "RETURN_OR_REFUND_REQUEST_PENDING"),
        ("Pending", "Accepted", "AWAITING_BUYER_SHIP"),
        ("Accepted", "Refund", "RETURN_OR_REFUND_REQUEST_COMPLETE"),
        ("Requested", "Rejected", "REFUND_OR_RETURN_REQUEST_REJECT"),
        ("Pending", "Cancelled", "RETURN_OR_REFUND_REQUEST_CANCEL"),
    ],
)
def test_allowed_manual_steps(current, target, tiktok):
    assert domain.manual_transition_error(current, target, tiktok) is None


@pytest.mark.parametrize(
    ("current", "target", "tiktok", "words"),
    [
        ("Requested", "Accepted", "RETURN_OR_REFUND_REQUEST_PENDING", "allowed next steps"),
        ("Refund", "Pending", "RETURN_OR_REFUND_REQUEST_COMPLETE", "closed"),
        ("Accepted", "Refund", "RETURN_OR_REFUND_REQUEST_SUCCESS",
         "TikTok's status is RETURN_OR_REFUND_REQUEST_SUCCESS"),
        ("Requested", "Cancelled", "RETURN_OR_REFUND_REQUEST_PENDING", "Cannot close as Cancelled"),
        ("Pending", "Pending", "AWAITING_BUYER_SHIP", "already"),
        ("Pending", "Shipped", "AWAITING_BUYER_SHIP", "Unknown status"),
    ],
)
def test_refused_manual_steps_say_why(current, target, tiktok, words):
    message = domain.manual_transition_error(current, target, tiktok)
    assert message and words in message


def test_decisions_fit_type_and_state():
    assert domain.seller_decisions("REFUND", "RETURN_OR_REFUND_REQUEST_PENDING", None) == (
        ("APPROVE_REFUND",), ("REJECT_REFUND",))
    assert domain.seller_decisions("RETURN_AND_REFUND", "BUYER_SHIPPED_ITEM", None)[0] == ("APPROVE_RECEIVED_PACKAGE",)
    assert domain.seller_decisions("REPLACEMENT", "REPLACEMENT_REQUEST_PENDING", "SELLER_RESPOND_REPLACEMENT")[1] == (
        "REJECT_REPLACEMENT",)
    assert domain.seller_decisions("REFUND", "RETURN_OR_REFUND_REQUEST_COMPLETE", None) == ((), ())


def test_money_is_decimal_and_bad_values_are_none():
    assert domain.to_decimal("10.5") == Decimal("10.50")
    assert domain.to_decimal("abc") is None
    assert domain.to_decimal("NaN") is None
    assert domain.to_decimal(None) is None


def test_grid_starts_with_the_seed_columns_in_design_order():
    assert domain.SEED_COLUMNS == (
        "Marketplace Return ID", "Marketplace Order ID", "Account ID", "Type", "Status", "Marketplace Status",
        "Reason", "Created At", "Updated At",
    )


@pytest.mark.parametrize(("returns", "cancellations", "words"), [
    (2006, 803, "2,006 returns and 803 cancellations"),
    (2006, 0, "2,006 returns"),
    (0, 803, "803 cancellations"),
    (1, 1, "1 return and 1 cancellation"),
    (0, 0, "0 returns"),
])
def test_counts_name_each_kind_and_only_the_kinds_there_are(returns, cancellations, words):
    assert domain.count_in_words(returns, cancellations) == words
    assert domain.count_in_words(returns, cancellations, "**{}**".format).replace("**", "") == words.replace(",", "")
