"""No value from a URL, TikTok or a user becomes a link, an image or HTML on any page (issue 15, item 7).

Hostile text is planted where each kind of value comes from: account names, the actor's name,
reason texts, an unmapped TikTok status, a currency, SKU and product names, the buyer's comment in
TikTok's records, a note, a sync error, an alert channel's name, and the link's own query values
(`/detail?id=...`). Every page is then drawn through the real app.py (AppTest), and every text that
Streamlit renders as Markdown (bodies, captions, alerts, toasts, titles, labels, help texts, options,
dialog and expander titles) is rendered here by a CommonMark parser, with bare addresses linked the
way Streamlit's GFM links them: no link or image made from the planted text may come out, and the
planted text must show as typed.
"""

from __future__ import annotations

import csv
import html
import io
import re
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from markdown_it import MarkdownIt
from openpyxl import load_workbook

from app_ui.formatting import WORD_JOINER, md_escape
from returns_core import alerts, sample_data, workflow
from returns_core.store.db import utcnow
from returns_core.store.return_writes import store_records
from tests.apptest import ROOT, open_app

LINK = "[Log in again](https://evil.example/login)"
IMAGE = "![x](http://host/pixel.png)"
TAG = "<img src=x>"
HOSTILE = f"Your session expired. {LINK} {IMAGE} {TAG} :red[!] :material/home:"
PLANTED = (LINK, IMAGE, TAG)
# what a link or image made from the planted text would point at
TARGETS = ("evil.example", "host/pixel.png")

ALPHA, BETA = "7000000001", "7000000002"
ALPHA_NAME, BETA_NAME = f"Shop {LINK}", f"{IMAGE} {TAG}"
CHANNEL = f"Ops {IMAGE}"  # an alert channel's name (kept to 60 characters)

PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "app_pages").glob("*.py"))

# Streamlit renders these proto fields as Markdown (st.markdown's body, captions, headings, alerts, toasts,
# metric label/value/delta, every widget's label and help, radio and pills options, progress text,
# expander/tab/popover labels, dialog titles) ...
MARKDOWN_FIELDS = {"body", "label", "help", "title", "text", "delta", "content", "caption", "options"}
# ... except in these elements, which show their text as it is (code, JSON, plain text, HTML we build
# ourselves, and the options of select boxes)
PLAIN_ELEMENTS = {"code", "json", "text", "html", "selectbox", "multiselect", "exception"}

_PARSER = MarkdownIt("commonmark", {"html": True}).enable(["strikethrough", "table"])
_HREF = re.compile(r"<a\b[^>]*\bhref=[\"']?([^\"'\s>]*)", re.IGNORECASE)
_SRC = re.compile(r"<img\b[^>]*\bsrc=[\"']?([^\"'\s>]*)", re.IGNORECASE)
# Streamlit's remark-gfm links bare addresses it finds in the text once the Markdown is parsed (escapes
# already resolved): mdast-util-gfm-autolink-literal's rules, after a start, a space or punctuation
_BARE_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)[^ \t\r\n]*", re.IGNORECASE)
_BARE_EMAIL = re.compile(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+")
_CODE = re.compile(r"<code>.*?</code>", re.DOTALL)


def rendered(markdown: str) -> str:
    return _PARSER.render(markdown)


def _text_runs(out: str) -> list[str]:
    """The text between the tags of rendered HTML, code left out (nothing in code becomes a link)."""
    return [html.unescape(run) for run in re.split(r"<[^>]+>", _CODE.sub(" ", out))]


def _after_boundary(text: str, start: int) -> bool:
    return start == 0 or text[start - 1].isspace() or unicodedata.category(text[start - 1])[0] in "PS"


def live_targets(markdown: str) -> list[str]:
    """Every address a link or an image in this Markdown would open or fetch, as Streamlit renders it."""
    out = rendered(markdown)
    found = _HREF.findall(out) + _SRC.findall(out)
    for run in _text_runs(out):
        found += [m.group(0) for m in _BARE_URL.finditer(run) if _after_boundary(run, m.start()) and "." in m[2]]
        found += [m.group(0) for m in _BARE_EMAIL.finditer(run) if _after_boundary(run, m.start())]
    return found


def shown_text(markdown: str) -> str:
    """What a reader sees: the rendered text without tags (and without the invisible word joiners)."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(markdown))).replace(WORD_JOINER, "")


# --- the planted store --------------------------------------------------------------------------


def hostile_return(rid: str, status: str, reason: str, *, currency: str = "USD", due_h: int | None = 5) -> dict:
    now = utcnow().replace(microsecond=0)
    total = Decimal("96.40")
    return sample_data.tiktok_return(
        rid, order_id=f"O{rid}", return_type="REFUND", return_status=status, reason="ecom_wrong_item",
        reason_text=reason, created=now - timedelta(days=2), updated=now - timedelta(days=1),
        refund_amount=sample_data.refund(currency, total, subtotal=total, shipping_fee="0", tax="0"),
        next_actions=[("SELLER_RESPOND_REFUND", now + timedelta(hours=due_h))] if due_h is not None else (),
        tracking_number=f"T{rid}",
        line_items=[sample_data.line_item(f"L{rid}", sku_id=f"S{rid}", seller_sku=f"SKU-{rid}", sku_name=IMAGE,
                                          product_name=LINK, currency=currency, refund_total=total)])


def plant(db) -> None:
    """Two accounts and four returns full of hostile text, with a buyer comment, a note, a failed sync
    and an alert channel."""
    sample_data.add_account(db, ALPHA, ALPHA_NAME, region="US", shop_cipher="CIPHER")
    sample_data.add_account(db, BETA, BETA_NAME, region="US", shop_cipher="CIPHER")
    sample_data.write_shop_returns(db, [
        (ALPHA, hostile_return("H1", "RETURN_OR_REFUND_REQUEST_PENDING", HOSTILE)),
        (ALPHA, hostile_return("H2", f"NEW_{LINK}", TAG, due_h=None)),  # a status TikTok never sent before
        (BETA, hostile_return("H3", "RETURN_OR_REFUND_REQUEST_SUCCESS", LINK, currency=TAG, due_h=None)),
        (BETA, hostile_return("H4", "RETURN_OR_REFUND_REQUEST_PENDING", IMAGE)),
    ])
    store_records(db, ALPHA, "H1", [{"event": "BUYER_APPLY", "role": "BUYER", "note": HOSTILE,
                                     "create_time": int(utcnow().timestamp()) - 3600}], fetched_at=utcnow())
    workflow.add_note(db, ALPHA, "H1", "Mia", HOSTILE)
    sample_data.add_sync_run(db, BETA, error=HOSTILE)
    alerts.add_channel(db, "json://127.0.0.1:9/hook", CHANNEL)


@pytest.fixture
def planted(app_db):
    plant(app_db)
    return app_db


# --- reading what the app drew ------------------------------------------------------------------


def markdown_texts(at) -> Iterator[tuple[str, str]]:
    """(element type, text) for every text of the run that Streamlit renders as Markdown."""
    for root in (at.main, at.sidebar):
        for node in root:
            proto = getattr(node, "proto", None)
            if not hasattr(proto, "ListFields") or node.type in PLAIN_ELEMENTS:
                assert not isinstance(proto, str) or node.type in PLAIN_ELEMENTS | {"imgs"}, node.type
                continue
            yield from ((node.type, text) for text in _strings(proto))


def _strings(message, name: str = "") -> Iterator[str]:
    """The Markdown-rendered strings of a proto message (and of the messages inside it)."""
    for field, value in message.ListFields():
        if not field.is_repeated:
            values = [value]
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = list(value.values())  # a map: its values
        else:
            values = list(value)
        for item in values:
            if hasattr(item, "ListFields"):
                yield from _strings(item, field.name)
            elif isinstance(item, str) and (field.name in MARKDOWN_FIELDS or name in MARKDOWN_FIELDS):
                yield item


def check_page(at, where: str) -> list[str]:
    """Assert no planted value became a link or an image; return the page's Markdown texts."""
    assert not at.exception, f"{where}: {at.exception}"
    texts = [text for _, text in markdown_texts(at)]
    live = [(text, target) for text in texts for target in live_targets(text)
            if any(bad in target for bad in TARGETS) or target == "x"]
    assert not live, f"{where}: planted text became a live link or image: {live}"
    for text in texts:
        for planted_text in PLANTED:
            # the planted text shows as typed, never half-parsed: escaped in the body, literal on screen
            if planted_text in shown_text(text):
                assert md_escape(planted_text) in text, (where, text)
    return texts


def shows(texts: list[str], value: str) -> bool:
    """True when some Markdown text of the page shows `value` as typed (escaped in the source)."""
    return any(md_escape(value) in text and value in shown_text(text) for text in texts)


# --- the walk -----------------------------------------------------------------------------------


def test_the_check_finds_the_links_a_page_would_have_without_escaping():
    # the check itself: raw planted text is live, escaped it is not, and it reads the same
    assert set(live_targets(HOSTILE)) == {"https://evil.example/login", "http://host/pixel.png", "x"}
    # bare addresses, which Streamlit links even when their punctuation is escaped
    assert live_targets("see https://evil.example/login") == ["https://evil.example/login"]
    assert live_targets(r"see https\:\/\/evil\.example\/login") == ["https://evil.example/login"]
    assert live_targets("at www.evil.example, or a@evil.example") == ["www.evil.example,", "a@evil.example"]
    assert live_targets("no: xhttps://evil.example `https://evil.example`") == []
    for text in (HOSTILE, "see https://evil.example/login", "<https://evil.example>", "WWW.evil.example",
                 "mail a@evil.example", ":red[x] $1+1$ :material/home: :smile:", "`a` *b* _c_ # d ~e~ &lt;",
                 "# heading\n- item\n2. item\n> quote\n===\n| a | b |\n|---|---|", "back\\slash"):
        assert live_targets(md_escape(text)) == [], text
        assert shown_text(md_escape(text)).strip() == text
        assert live_targets(f"**{md_escape(text)}**") == []
        assert live_targets(md_escape(text, code=True)) == []
    assert shown_text(md_escape("a `b` c", code=True)).strip() == "a `b` c"


@pytest.mark.parametrize("page", PAGES)
def test_no_planted_value_becomes_a_link_or_an_image_on_any_page(planted, page):
    query = {"id": "H1", "shop": ALPHA} if page.endswith("detail.py") else {}
    at = open_app(page, actor=LINK, **query)
    texts = check_page(at, page)
    # the sidebar names the account and the one acting on every page: shown, as typed
    assert shows(texts, LINK), texts
    if page.endswith("detail.py"):
        assert shows(texts, HOSTILE)  # the reason and the buyer's comment


@pytest.mark.parametrize("query", [
    {"id": HOSTILE},
    {"id": "H1", "shop": HOSTILE},
    {"id": f"Your session expired. {LINK}", "shop": IMAGE},
])
def test_a_hostile_link_to_the_detail_page_shows_its_values_as_text(planted, query):
    at = open_app("app_pages/detail.py", **query)
    texts = check_page(at, f"detail {query}")
    assert at.title[0].value == "Return not found"
    for value in query.values():
        assert shows(texts, value.strip()), texts


@pytest.mark.parametrize("query", [
    {"q": HOSTILE[:200]},
    {"reason": HOSTILE},
    {"account": ALPHA_NAME},
    {"mstatus": f"NEW_{LINK}"},
])
def test_hostile_filter_values_in_the_grid_link_stay_text(planted, query):
    check_page(open_app(**query), f"grid {query}")


def test_a_failed_sync_and_a_channel_with_hostile_text_stay_text(planted):
    texts = check_page(open_app("app_pages/settings.py"), "settings")
    assert shows(texts, CHANNEL)


# --- the CSVs the pages offer: no cell a spreadsheet would run (issue 15, item 9) --------------------

FORMULA_REASON = "=cmd|' /C calc'!A0"
FORMULA_NOTE = '@SUM(1+1)*HYPERLINK("https://evil.example")'


@pytest.fixture
def downloads(monkeypatch):
    """What each download button on the page would hand the browser (a spy on st.download_button)."""
    import streamlit as st
    from streamlit.delta_generator import DeltaGenerator

    offered: dict[str, bytes] = {}
    original = DeltaGenerator.download_button

    def spy(self, label, data, *args, **kwargs):
        content = data() if callable(data) else data
        offered[kwargs.get("file_name") or label] = content.encode() if isinstance(content, str) else content
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    # st.download_button is the main area's method, bound when streamlit was imported
    monkeypatch.setattr(st, "download_button", lambda *args, **kwargs: spy(st._main, *args, **kwargs))
    return offered


def cells(content: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(content.decode())) for cell in row]


def test_the_files_the_pages_offer_run_no_formula(app_db, downloads):
    sample_data.add_account(app_db, ALPHA, "Alpha", region="US", shop_cipher="CIPHER")
    sample_data.write_shop_returns(app_db, [
        (ALPHA, hostile_return("F1", "RETURN_OR_REFUND_REQUEST_PENDING", FORMULA_REASON)),
        (ALPHA, hostile_return("F2", "RETURN_OR_REFUND_REQUEST_PENDING", "Wrong size"))])
    workflow.add_note(app_db, ALPHA, "F1", "Mia", FORMULA_NOTE)

    open_app("app_pages/reasons.py")  # the grid first (a new session opens there), then Reason Analytics
    # the grid's Export: the store's export_returns, the same as the CLI's `export --out`
    grid_csv = next(content for name, content in downloads.items() if name.startswith("returns-") and
                    name.endswith(".csv"))
    assert "'" + FORMULA_REASON in cells(grid_csv) and FORMULA_REASON not in cells(grid_csv)
    grid_xlsx = next(content for name, content in downloads.items() if name.endswith(".xlsx"))
    sheet = load_workbook(io.BytesIO(grid_xlsx)).active
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    reasons_in_sheet = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert "'" + FORMULA_REASON in reasons_in_sheet["F1"]
    # every chart's data on Reason Analytics
    reasons = {name: cells(content) for name, content in downloads.items() if name.endswith(".csv")
               and not name.startswith("returns-")}
    assert "reasons-grouped.csv" in reasons
    seen = [cell for found in reasons.values() for cell in found]
    assert "'" + FORMULA_REASON in seen and FORMULA_REASON not in seen

    downloads.clear()
    open_app("app_pages/detail.py", id="F1", shop=ALPHA)
    (history_csv,) = [content for name, content in downloads.items() if name.startswith("history_")]
    notes = [row["Note"] for row in csv.DictReader(io.StringIO(history_csv.decode()))]
    assert "'" + FORMULA_NOTE in notes and FORMULA_NOTE not in notes
