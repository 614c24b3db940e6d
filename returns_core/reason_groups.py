"""Return reasons grouped into stable groups, and who is responsible: kept as data.

TikTok's reason codes differ by market and change over time (a `_uk`, `_JP` or `_seller`
suffix, `refund_reason` vs `refund_and_return_reason`), and the text is localized. So a reason
is classified by phrases found in its code and text, not by an exact list of codes: the code
and the text are lower-cased, every run of non-alphanumerics becomes one space
(`ecom_order_delivered_refund_reason_not_received` -> "ecom order delivered refund reason not
received"), and the first rule whose phrase occurs wins. Rules are ordered from specific to
general ("ordered incorrect size" before "wrong ...", "missing or broken parts" before "broken").

The `_seller` suffix in TikTok codes means *the seller started the refund*, not that the
seller is to blame (partner.tiktokshop.com/docv2/page/refund-reasons), so it is not used.
Responsibility comes from what the reason says: a fault in the goods or listing -> Seller, a
buyer's choice -> Buyer, the carrier -> Logistics; what cannot be told -> Unknown.

`group_sql` / `responsibility_sql` turn the same table into DuckDB CASE expressions, so every
aggregate classifies in SQL with exactly the rules the page shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from returns_core.domain import sql_literal

DEFECTIVE = "Defective or damaged"
WRONG_ITEM = "Wrong item"
NOT_AS_DESCRIBED = "Not as described"
SIZE_FIT = "Size or fit"
MISSING_PARTS = "Missing parts"
LOGISTICS_LATE = "Logistics or late"
CHANGED_MIND = "Changed mind"
OTHER = "Other"

GROUPS: tuple[str, ...] = (
    DEFECTIVE, WRONG_ITEM, NOT_AS_DESCRIBED, SIZE_FIT, MISSING_PARTS, LOGISTICS_LATE, CHANGED_MIND, OTHER,
)

SELLER = "Seller"
BUYER = "Buyer"
LOGISTICS = "Logistics"
UNKNOWN = "Unknown"

RESPONSIBILITIES: tuple[str, ...] = (SELLER, BUYER, LOGISTICS, UNKNOWN)


@dataclass(frozen=True)
class ReasonRule:
    """A phrase that, found in a reason's normalized code or text, puts it in a group."""

    phrase: str  # lower-case words separated by single spaces; matched on word boundaries
    group: str
    responsibility: str


def _rules(group: str, responsibility: str, *phrases: str) -> tuple[ReasonRule, ...]:
    return tuple(ReasonRule(p, group, responsibility) for p in phrases)


# First match wins. Examples of the TikTok codes and texts each line is meant for are in the
# tests (tests/test_analytics.py, test_tiktok_reason_catalogue_is_grouped).
REASON_RULES: tuple[ReasonRule, ...] = (
    # damage on the way is the carrier's, though the goods arrive damaged
    *_rules(DEFECTIVE, LOGISTICS, "damaged in transit", "damaged during shipping", "damaged in shipping"),
    # an address the buyer gave wrongly is the buyer's, even though "wrong" and "delivery" appear
    *_rules(LOGISTICS_LATE, BUYER, "wrong delivery info", "incorrect address", "wrong address"),
    # before the size rules, which would read "shipping takes too long" as a fit
    *_rules(LOGISTICS_LATE, LOGISTICS, "long shipping", "shipping takes too long", "shipping time"),
    # size and fit: TikTok treats them as the buyer's pick (not seller at fault: buyer pays the return)
    *_rules(SIZE_FIT, BUYER, "size", "sizes", "too big", "too small", "too tight", "too loose", "fit", "fits",
            "fitting"),
    *_rules(MISSING_PARTS, SELLER, "missing", "accessories", "accessory", "incomplete", "parts"),
    *_rules(LOGISTICS_LATE, LOGISTICS, "not received", "wasn t received", "didn t receive", "never arrived",
            "not arrive", "didn t arrive", "arrive on time", "missed delivery", "missed estimated",
            "miss estimated", "package lost", "lost", "delivery failed", "failed delivery", "late",
            "delayed", "delay", "in transit", "return proxy"),
    *_rules(WRONG_ITEM, SELLER, "wrong product", "wrong item", "wrong colour", "wrong color", "wrong variant",
            "wrong model", "incorrect item", "different item", "different product"),
    *_rules(DEFECTIVE, SELLER, "defective", "defect", "damaged", "damage", "broken", "doesn t work",
            "does not work", "not working", "faulty", "stopped working", "expired", "spoiled",
            "not frozen", "quality issue", "poor quality"),
    # "quality or style not as expected" sits between a poor listing and a buyer's taste
    *_rules(NOT_AS_DESCRIBED, UNKNOWN, "not as expected"),
    *_rules(NOT_AS_DESCRIBED, SELLER, "not as described", "not match", "doesn t match", "does not match",
            "description", "described", "counterfeit", "fake", "not authentic", "different from picture"),
    *_rules(CHANGED_MIND, BUYER, "no need", "no longer", "not needed", "changed my mind", "change of mind",
            "changed mind", "does not suit", "doesn t suit", "mistake", "mistakes", "by mistake",
            "unauthorised", "unauthorized", "better price", "found cheaper", "don t want", "do not want"),
)
"""The grouping, in order. A reason no phrase matches is Other / Unknown."""

_PHRASE = re.compile(r"[a-z0-9]+( [a-z0-9]+)*")
for _rule in REASON_RULES:
    # phrases go into SQL as literals and must match normalized text: keep them plain
    assert _PHRASE.fullmatch(_rule.phrase), _rule.phrase
    assert _rule.group in GROUPS and _rule.responsibility in RESPONSIBILITIES, _rule


def normalize(code: str | None, text: str | None) -> str:
    """The form the rules match: lower-case words of code and text, padded with spaces."""
    joined = f"{code or ''} {text or ''}".lower()
    return " " + " ".join(re.findall(r"[a-z0-9]+", joined)) + " "


def classify(code: str | None, text: str | None) -> tuple[str, str]:
    """(group, responsibility) of one reason; the Python twin of the SQL expressions."""
    key = normalize(code, text)
    for rule in REASON_RULES:
        if f" {rule.phrase} " in key:
            return rule.group, rule.responsibility
    return OTHER, UNKNOWN


def normalize_sql(code: str, text: str) -> str:
    """SQL for `normalize` over two VARCHAR expressions (same result, computed in DuckDB)."""
    joined = f"lower(coalesce({code}, '') || ' ' || coalesce({text}, ''))"
    return f"(' ' || trim(regexp_replace({joined}, '[^a-z0-9]+', ' ', 'g')) || ' ')"


def _case_sql(key: str, field: str, default: str) -> str:
    whens = " ".join(
        f"WHEN contains({key}, {sql_literal(' ' + rule.phrase + ' ')}) THEN {sql_literal(getattr(rule, field))}"
        for rule in REASON_RULES
    )
    return f"CASE {whens} ELSE {sql_literal(default)} END"


def group_sql(key: str) -> str:
    """SQL CASE giving the reason group from a column holding `normalize_sql` output."""
    return _case_sql(key, "group", OTHER)


def responsibility_sql(key: str) -> str:
    """SQL CASE giving the responsibility from a column holding `normalize_sql` output."""
    return _case_sql(key, "responsibility", UNKNOWN)


def rules_table() -> list[dict[str, str]]:
    """The rules as rows for display: order, phrase, group, responsibility."""
    return [
        {"Order": str(i), "Phrase in code or text": rule.phrase, "Group": rule.group,
         "Responsibility": rule.responsibility}
        for i, rule in enumerate(REASON_RULES, start=1)
    ]
