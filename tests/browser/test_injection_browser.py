"""In a real browser: a phishing link or a tracking image planted in a deep link or in the data is shown
as text, never as a link or an image (issue 15, item 7). The AppTest walk (tests/test_injection.py)
checks every page's Markdown; this checks what Chromium actually builds from it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from app_ui.formatting import WORD_JOINER
from returns_core.store.db import Database
from tests.browser.conftest import app_env, open_page, running_app
from tests.test_injection import ALPHA, HOSTILE, LINK, plant

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LIVE = 'a[href*="evil.example"], img[src*="host/pixel"], img[src="x"], img[src$="/x"]'


@pytest.fixture(scope="module")
def planted_server(tmp_path_factory) -> Iterator[str]:
    """`streamlit run app.py` over a store full of hostile text (no demo shop)."""
    folder = tmp_path_factory.mktemp("injection-app")
    db = Database(folder / "returns.duckdb")
    db.migrate()
    plant(db)
    with running_app(folder, app_env(RETURNS_DB=str(db.path), RETURNS_DEMO="0")) as url:
        yield url


def seen_text(locator) -> str:
    """The text a reader sees there (the invisible word joiners that stop bare links left out)."""
    return locator.inner_text().replace(WORD_JOINER, "")


@pytest.mark.parametrize("query", [{"id": HOSTILE}, {"id": "H1", "shop": ALPHA}], ids=["hostile-id", "hostile-data"])
def test_the_detail_page_builds_no_link_or_image_from_planted_text(page, planted_server, query, tmp_path):
    open_page(page, f"{planted_server}/detail?{urlencode(query)}")
    page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)
    # the planted text is on the screen as typed, in the page and in the sidebar's account name ...
    shown = seen_text(page.get_by_test_id("stMain"))
    assert HOSTILE in shown
    assert f"Shop {LINK}" in seen_text(page.get_by_test_id("stSidebar"))
    # ... and nowhere in the page is there a link to it or an image from it
    live = page.locator(LIVE)
    assert live.count() == 0, live.evaluate_all("els => els.map(e => e.parentElement.outerHTML)")
