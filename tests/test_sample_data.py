"""The sample factory (returns_core.sample_data) that tests and benches build their stores with: its
return objects are TikTok's shape, and what it writes is what a sync writes."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from returns_core import domain
from returns_core import sample_data as sample
from returns_core.accounts import get_account, list_accounts
from returns_core.store import sync_runs
from returns_core.store.db import utcnow
from returns_core.store.returns import find_return
from tests import ui_fixtures as ui
from tests.analytics_fixtures import RETURNS as ANALYTICS_RETURNS
from tests.tiktok_spec import SEARCH, closed_contract, conforms, needs_spec


def every_kind_of_sample() -> list[dict]:
    now = utcnow().replace(microsecond=0)
    objects = [sample.example_return()]
    objects += [obj for _, obj in sample.synthetic_returns(40)]
    objects += [ui.return_object(rid, *rest, now=now) for rid, _, *rest in ui.RETURNS]
    return objects


@needs_spec
def test_sample_return_objects_conform_to_tiktoks_search_answer():
    contract = closed_contract("tiktok_return_refund.openapi.yaml")
    objects = every_kind_of_sample()
    body = {"code": 0, "message": "Success", "request_id": "sample",
            "data": {"return_orders": objects, "next_page_token": "", "total_count": len(objects)}}
    conforms(contract, "POST", SEARCH, httpx.Response(200, content=json.dumps(body).encode()))


def test_a_sample_return_is_stored_as_a_sync_stores_it(db):
    now = utcnow().replace(microsecond=0)
    obj = sample.tiktok_return(
        "R1", order_id="O1", return_type="REFUND", return_status="RETURN_OR_REFUND_REQUEST_PENDING",
        reason="code", reason_text="Damaged", created=now - timedelta(days=1),
        refund_amount=sample.refund("USD", "10.00", subtotal="8.00"),
        next_actions=[("SELLER_RESPOND_REFUND", now + timedelta(hours=5))], tracking_number="TRK1",
        line_items=[sample.line_item("L1", seller_sku="SKU-1", sku_id="111", currency="USD", refund_total="10.00")],
        return_warehouse_address={"full_address": "1 Main St"})  # any TikTok field, by its own name
    counts = sample.write_returns(db, "7000000001", [obj], synced_at=now)
    assert (counts.new, counts.updated, counts.unchanged) == (1, 0, 0)
    stored = find_return(db, "R1", "7000000001")
    assert (stored["type"], stored["status"], stored["next_action"]) == (
        domain.REFUND, domain.REQUESTED, "SELLER_RESPOND_REFUND")
    assert stored["due_by"] == now + timedelta(hours=5) and stored["created_at"] == now - timedelta(days=1)
    assert str(stored["refund_total"]) == "10.0000" and stored["seller_skus"] == "SKU-1 111"
    assert json.loads(stored["payload"])["return_warehouse_address"] == {"full_address": "1 Main St"}
    assert sample.write_returns(db, "7000000001", [obj]).unchanged == 1  # the same object again changes nothing


def test_status_and_type_words_lead_back_to_tiktoks():
    for status in domain.STATUSES:
        assert domain.mapped_status(sample.marketplace_status_for(status)) == status
    for type_word in domain.TYPES:
        assert domain.display_type(sample.return_type_for(type_word)) == type_word
    assert {row[3] for row in ANALYTICS_RETURNS} <= set(domain.STATUSES)


def test_sample_accounts_and_sync_runs_are_what_the_app_reads(db):
    sample.add_account(db, "7000000001", "Alpha")
    sample.add_account(db, "7000000002", "Beta", enabled=False)
    sample.add_account(db, "7000000003", "Gamma", invalid_reason="Authorization was revoked")
    sample.add_account(db, "7000000004", "Delta", refresh_expires_in=timedelta(days=-1))
    assert [(a.name, a.status) for a in list_accounts(db)] == [
        ("Alpha", "Active"), ("Beta", "Disabled"), ("Delta", "Expired"), ("Gamma", "Invalid")]
    assert get_account(db, "7000000001").api_base == sample.NOWHERE
    started = utcnow().replace(microsecond=0) - timedelta(hours=2)
    sample.add_sync_run(db, "7000000001", started_at=started, new=4)
    sample.add_sync_run(db, "7000000001", started_at=started + timedelta(hours=1), error="TikTok had a server error")
    last = sync_runs.last_syncs(db)["7000000001"]
    assert (last.state, last.error, last.started_at) == ("failed", "TikTok had a server error",
                                                        started + timedelta(hours=1))
    assert last.succeeded_at == started + timedelta(seconds=2.5)
    runs = sync_runs.page(db)
    assert list(runs["New"]) == [0, 4] and list(runs["Result"]) == ["failed", "ok"]


@pytest.mark.parametrize("n", [0, 1, 7])
def test_synthetic_returns_are_unique_and_spread_over_the_shops(n):
    pairs = list(sample.synthetic_returns(n, ("a", "b")))
    assert len({obj["return_id"] for _, obj in pairs}) == n
    assert {shop for shop, _ in pairs} == ({"a", "b"} if n > 1 else {"a"} if n else set())
