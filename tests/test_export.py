"""Export: exactly the filtered rows, the grid's columns and names, ISO 8601 UTC, display words."""

from __future__ import annotations

import csv

import pandas as pd
import pytest
from openpyxl import load_workbook

from returns_core import domain
from returns_core.filters import FilterError, ReturnFilters
from returns_core.sample_data import EXAMPLE_SHOP as SHOP
from returns_core.sample_data import EXAMPLE_TIME as T0
from returns_core.sample_data import example_return as make_return
from returns_core.store.db import utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.store.returns import count_returns, export_returns

HEADER = [name for name, _ in domain.GRID_COLUMNS]
STATUSES = ["RETURN_OR_REFUND_REQUEST_PENDING", "AWAITING_BUYER_SHIP", "RETURN_OR_REFUND_REQUEST_SUCCESS",
            "RETURN_OR_REFUND_REQUEST_COMPLETE", "REFUND_OR_RETURN_REQUEST_REJECT", "PARTNER_REVIEW_PENDING"]
TYPES = ["REFUND", "RETURN_AND_REFUND", "REPLACEMENT"]


@pytest.fixture
def filled(db):
    objs = [make_return(f"40{i:04d}", STATUSES[i % len(STATUSES)], T0 + i, return_type=TYPES[i % 3],
                        refund_amount={"currency": "USD", "refund_total": f"{i}.05"}) for i in range(60)]
    upsert_page(db, SHOP, objs[:30], synced_at=utcnow())
    upsert_page(db, "7000000002", objs[30:], synced_at=utcnow())
    return db


def read_csv(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_has_the_grid_header_and_readable_values(filled, tmp_path):
    out = tmp_path / "all.csv"
    assert export_returns(filled, ReturnFilters(), out) == 60
    with open(out, newline="") as fh:
        assert next(csv.reader(fh)) == HEADER
    by_id = {r["Marketplace Return ID"]: r for r in read_csv(out)}
    one = by_id["400007"]
    assert one["Type"] == "Return & Refund" and one["Status"] == "Pending"
    assert one["Marketplace Status"] == "AWAITING_BUYER_SHIP"
    assert one["Account ID"] == SHOP and one["Reason"] == "Wrong product"
    assert one["Updated At"] == "2025-10-09T08:53:27Z"
    assert one["Created At"] == "2025-10-09T07:53:20Z"
    assert one["Refund Total"] == "7.05" and one["Currency"] == "USD"
    unmapped = by_id["400005"]
    assert unmapped["Marketplace Status"] == "PARTNER_REVIEW_PENDING" and unmapped["Status"] == ""
    assert unmapped["Unmapped Status"] == "true"


def test_filtered_export_has_exactly_the_filtered_count(filled, tmp_path):
    filters = ReturnFilters(shop_ids=(SHOP,), types=("Refund",))
    out = tmp_path / "some.csv"
    n = export_returns(filled, filters, out)
    assert n == count_returns(filled, filters) == 10
    exported = read_csv(out)
    assert len(exported) == 10
    assert {r["Type"] for r in exported} == {"Refund"} and {r["Account ID"] for r in exported} == {SHOP}


def test_xlsx_and_parquet_match_the_csv(filled, tmp_path):
    filters = ReturnFilters(statuses=("Accepted", "Refund"))
    export_returns(filled, filters, tmp_path / "x.csv")
    expected = read_csv(tmp_path / "x.csv")
    export_returns(filled, filters, tmp_path / "x.xlsx")
    export_returns(filled, filters, tmp_path / "x.parquet")

    sheet = load_workbook(tmp_path / "x.xlsx", read_only=True).active
    xlsx_rows = list(sheet.iter_rows(values_only=True))
    assert list(xlsx_rows[0]) == HEADER and len(xlsx_rows) - 1 == len(expected) == 20
    assert [r[0] for r in xlsx_rows[1:]] == [r["Marketplace Return ID"] for r in expected]
    assert xlsx_rows[1][HEADER.index("Updated At")] == expected[0]["Updated At"]

    frame = pd.read_parquet(tmp_path / "x.parquet")
    assert list(frame.columns) == HEADER and len(frame) == 20
    assert list(frame["Marketplace Return ID"]) == [r["Marketplace Return ID"] for r in expected]
    assert list(frame["Updated At"]) == [r["Updated At"] for r in expected]
    assert set(frame["Status"]) == {"Accepted", "Refund"}


def test_bad_export_target_is_one_clear_error(filled, tmp_path):
    with pytest.raises(FilterError, match="must end in .csv, .xlsx or .parquet"):
        export_returns(filled, ReturnFilters(), tmp_path / "x.json")
    with pytest.raises(FilterError, match="does not exist"):
        export_returns(filled, ReturnFilters(), tmp_path / "missing" / "x.csv")
