"""Shared fixtures: a temporary store, a seeded Sandbox, and that sandbox served on 127.0.0.1.

- `db`: an empty, migrated Database in tmp_path with its own encryption key.
- `sandbox`: Sandbox(seed=7, shops=2, returns=500); `make_sandbox(**kw)` builds others. Its world
  clock stands still (frozen wall clock) unless a test calls `sandbox.advance(seconds)`, so ground
  truth cannot move between a sync and the assertion.
- `sandbox_server`: `sandbox` served over real HTTP (`.url`), stopped after the test.
- `sandbox_accounts`: every sandbox shop connected in `db` through `sandbox_server`.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from returns_core.store.db import Database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_demo_shop(monkeypatch):
    # tests create the accounts they need; the embedded demo shop would be a surprise guest
    monkeypatch.setenv("RETURNS_DEMO", os.environ.get("RETURNS_DEMO_IN_TESTS", "0"))


@pytest.fixture
def db_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def db(tmp_path, db_key) -> Database:
    """An empty store in tmp_path (schema applied)."""
    database = Database(tmp_path / "returns.duckdb", key=db_key, lock_timeout=10)
    database.migrate()
    return database


@pytest.fixture
def make_sandbox():
    """Build a Sandbox with other settings: make_sandbox(shops=1, returns=50, ...)."""
    from returns_core.tiktok.sandbox import Sandbox

    def build(**options) -> Sandbox:
        # The world stands still, so nothing moves between a sync and its check. Signed timestamps
        # are checked against this clock too (5 min past to 30 s ahead): freezing it 4 minutes ahead
        # keeps the client's real timestamps valid for the first 4.5 minutes of a test.
        frozen = time.time() + 240
        settings = {"seed": 7, "shops": 2, "returns": 500, "wall_clock": lambda: frozen, **options}
        return Sandbox(**settings)

    return build


def pytest_configure(config):
    config.addinivalue_line("markers", "sandbox(**settings): Sandbox settings for the `sandbox` fixture, "
                                       "e.g. @pytest.mark.sandbox(returns=100)")


@pytest.fixture
def sandbox(make_sandbox, request):
    """A seeded TikTok Shop simulator: 2 shops with 500 returns each (or @pytest.mark.sandbox(...))."""
    marker = request.node.get_closest_marker("sandbox")
    return make_sandbox(**(marker.kwargs if marker else {}))


@pytest.fixture
def sandbox_server(sandbox):
    """`sandbox` served over real HTTP on 127.0.0.1 (any free port); `.url` is its base URL."""
    with sandbox.serve(host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def sandbox_accounts(db, sandbox, sandbox_server):
    """Every sandbox shop connected in `db` (named "Sandbox - <shop name>"), talking real HTTP."""
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.tiktok.client import TokenSet
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

    tokens = TokenSet.from_data(sandbox.issue_tokens())
    return add_accounts_with_tokens(db, "Sandbox", SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                    tokens.refresh_token, api_base=sandbox_server.url,
                                    auth_base=sandbox_server.url, is_sandbox=True, tokens=tokens)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """Environment for `python -m returns_core` subprocesses: this checkout, a tmp store, no demo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETURNS_")}
    env.update(PYTHONPATH=str(ROOT), RETURNS_DB=str(tmp_path / "cli.duckdb"), RETURNS_DEMO="0",
               PYTHONUNBUFFERED="1")
    return env


PYTHON = sys.executable


def decisions_sent(sandbox) -> Counter:
    """Every approve/reject request the sandbox receives, per return id (over HTTP, any thread)."""
    sent: Counter = Counter()
    real = sandbox.answer

    def answer(method, path, query, headers, body):
        if method == "POST" and path.rsplit("/", 1)[-1] in ("approve", "reject"):
            sent[path.split("/")[-2]] += 1
        return real(method, path, query, headers, body)

    sandbox.answer = answer
    return sent


def wait_until(condition, what: str, timeout: float = 60, every: float = 0.02):
    """Poll `condition()` until it returns something true, and return that; fail naming `what` at the deadline.

    The way tests wait for another thread or process: on a signal it gives (a file, a line, a row),
    never on a guess of how long it takes.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(every)
    return value


@pytest.fixture
def one_page_at_a_time(monkeypatch):
    """Fetch no page ahead and commit page by page, so a test can act (inject a fault) between two pages."""
    from returns_core import sync

    monkeypatch.setattr(sync, "PREFETCH_PAGES", 1)
    monkeypatch.setattr(sync, "BATCH_PAGES", 1)


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    """Streamlit's caches are process-wide: every test starts (and ends) without them."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()  # also stops each app's auto-sync thread


@pytest.fixture
def app_db(tmp_path, monkeypatch):
    """An empty store the app will open (RETURNS_DB), with its key in a file beside it."""
    from returns_core.store.db import Database

    path = tmp_path / "app.duckdb"
    monkeypatch.setenv("RETURNS_DB", str(path))
    monkeypatch.setenv("RETURNS_DEMO", "0")
    monkeypatch.delenv("RETURNS_DESK_KEY", raising=False)
    database = Database(path, lock_timeout=10)
    database.migrate()
    return database


@pytest.fixture
def store_reader():
    """store_reader(db, db_key, env): a reliability.StoreReader process, killed at teardown if a failing
    test left it running (a reader left behind keeps a core busy for every test after it)."""
    from tests.reliability import StoreReader

    started: list[StoreReader] = []

    def start(db, db_key: str, env: dict) -> StoreReader:
        started.append(StoreReader(db, db_key, env))
        return started[-1]

    yield start
    for reader in started:
        if reader.process.poll() is None:
            reader.process.kill()
            reader.process.wait(30)
