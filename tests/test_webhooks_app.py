"""End to end, as run.sh runs it: `streamlit run server.py` in its own process serves the app and
POST /webhooks/tiktok on one port; a sandbox shop, served over HTTP and live, is subscribed to it.
The sandbox changes returns (its clock moves a day, the seller approves one) and sends its webhooks
as TikTok does (some twice, some late); the app's process re-syncs what they name, and the store
ends equal to the sandbox without anyone pressing Sync.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from returns_core import webhooks
from returns_core.store import webhook_events
from returns_core.sync import sync_account
from returns_core.tiktok.sandbox import WebhookSettings
from returns_core.tiktok_session import tiktok_session
from tests.conftest import ROOT, free_port, wait_until
from tests.reliability import connect, stored_payloads, truth_payloads

DAY = 86_400
APPROVE_FOR = {"SELLER_RESPOND_REFUND": "APPROVE_REFUND", "SELLER_RESPOND_RETURN": "APPROVE_RETURN",
               "SELLER_RESPOND_RECEIVE_PACKAGE": "APPROVE_RECEIVED_PACKAGE",
               "SELLER_RESPOND_REPLACEMENT": "APPROVE_REPLACEMENT"}

pytestmark = pytest.mark.slow


@pytest.fixture
def app_server(db, db_key, tmp_path) -> Iterator[str]:
    """`streamlit run server.py` on a free port over the test's store; yields the app's base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(RETURNS_DB=str(db.path), RETURNS_DESK_KEY=db_key, RETURNS_DEMO="0", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "server.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: process.poll() is not None or "Webhook receiver: POST" in log_path.read_text(),
                       "the server to start its receiver", timeout=120)
            assert process.poll() is None, log_path.read_text()
            yield url
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_streamlit_run_server_py_serves_the_app_and_the_receiver_on_one_port(app_server):
    assert httpx.get(f"{app_server}/_stcore/health", timeout=10).text == "ok"
    page = httpx.get(f"{app_server}/", timeout=10)
    assert page.status_code == 200 and '<div id="root">' in page.text
    assert httpx.get(f"{app_server}{webhooks.PATH}", timeout=10).status_code == 405
    assert httpx.post(f"{app_server}{webhooks.PATH}", content=b"{}", timeout=10).status_code == 400


def test_run_sh_starts_server_py():
    script = (ROOT / "run.sh").read_text()
    assert "streamlit run server.py" in script and "streamlit run app.py" not in script


def test_sandbox_changes_reach_the_store_through_webhooks_with_no_sync(db, make_sandbox, app_server):
    like_tiktok = WebhookSettings(duplicate_rate=0.2, reorder_rate=0.2, reorder_delay=1.0,
                                  retry_delays=(0.5, 1.0, 2.0), seed=11)
    sandbox = make_sandbox(shops=1, returns=150, webhooks=like_tiktok)
    with sandbox.serve(tick=0.1) as served:
        account, _ = connect(db, sandbox, served.url)
        assert sync_account(db, account, trigger="test").ok
        runs = db.value("SELECT count(*) FROM sync_runs")
        address = f"{app_server}{webhooks.PATH}"
        assert webhooks.subscribe(db, account, address).covers(address)

        sandbox.advance(DAY)
        return_id, decision = _waiting_for_the_seller(sandbox, account.shop_id)
        with tiktok_session(db, account) as client:
            client.approve_return(return_id, decision, idempotency_key=f"e2e-{return_id}")
        stats = wait_until(lambda: (s := sandbox.webhooks.stats())["delivered"] == s["events"] + s["duplicates"]
                           and s, "every webhook delivered", timeout=120)
        assert stats["events"] > 1 and stats["failed"] == 0
        wait_until(lambda: webhook_events.summary(db).waiting == 0
                   and stored_payloads(db, account.shop_id) == truth_payloads(sandbox, account.shop_id),
                   "the store to equal the sandbox", timeout=120)

    summary = webhook_events.summary(db)
    assert summary.total == stats["events"] and summary.failed == 0
    assert db.value("SELECT count(*) FROM sync_runs") == runs  # nobody pressed Sync
    assert db.value("SELECT count(*) FROM history WHERE actor = 'webhook' AND return_id = ?", [return_id]) >= 1


def _waiting_for_the_seller(sandbox, shop_id: str) -> tuple[str, str]:
    for found in sandbox.returns_for(shop_id):
        actions = found.get("seller_next_action_response")
        if actions and actions[0]["action"] in APPROVE_FOR:
            return found["return_id"], APPROVE_FOR[actions[0]["action"]]
    raise AssertionError("no return waits for the seller")


def test_the_server_takes_its_port_from_streamlits_options():
    """own_address follows server.port and server.address, as `streamlit run` set them."""
    from streamlit import config as st_config

    import server

    before = {name: st_config.get_option(name) for name in ("server.port", "server.address")}
    try:
        st_config.set_option("server.port", 8765)
        st_config.set_option("server.address", "localhost")
        assert server.own_address() == "http://127.0.0.1:8765/webhooks/tiktok"
        st_config.set_option("server.address", "0.0.0.0")
        assert server.own_address(9000) == "http://127.0.0.1:9000/webhooks/tiktok"
    finally:
        for name, value in before.items():
            st_config.set_option(name, value)
