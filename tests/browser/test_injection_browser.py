"""In a real browser: a phishing link or a tracking image planted in a deep link or in the data is shown
as text, never as a link or an image (issue 15, item 7). The AppTest walk (tests/test_injection.py)
checks every page's Markdown; this checks what Chromium actually builds from it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from app_ui.formatting import WORD_JOINER
from returns_core.store.db import Database
from tests.browser.conftest import ROOT, _free_port, _wait_healthy, open_page
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
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(RETURNS_DB=str(db.path), RETURNS_DEMO="0", PYTHONUNBUFFERED="1")
    with open(folder / "streamlit.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


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
