"""The embedded demo shop: an in-process TikTok Shop sandbox beside the database, and its account.

A new user runs the app with no TikTok credentials: a store with no account gets "Demo Shop
(sandbox)", whose `sandbox://demo` bases are routed to the sandbox in this process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from returns_core.accounts import ACTIVE, INVALID, Account, list_accounts
from returns_core.store import settings
from returns_core.store.db import Database
from returns_core.tiktok.client import TokenSet

logger = logging.getLogger(__name__)

SANDBOX_SCHEME = "sandbox://"
DEMO_API_BASE = "sandbox://demo"
DEMO_ACCOUNT_NAME = "Demo Shop (sandbox)"
DEMO_SEED = 7
DEMO_RETURNS = 2000
DEMO_CANCELLATIONS = 800  # buyers' cancellations before shipment, over the same 90 days
DEMO_ENV = "RETURNS_DEMO"
DEMO_SETTING = "demo_enabled"
# what httpx sees for a sandbox:// account: any host works with an in-process transport
_SANDBOX_HTTP_BASE = "http://sandbox.invalid"
_OFF_WORDS = ("0", "false", "no", "off")

_demo_lock = threading.Lock()
_demo_sandboxes: dict[Path, Any] = {}
_demo_create_lock = threading.Lock()


def demo_state_path(db_path: str | Path) -> Path:
    """Where the demo sandbox keeps its state: `<db stem>.sandbox.json` beside the database."""
    path = Path(db_path)
    return path.with_name(f"{path.stem}.sandbox.json")


def demo_sandbox(db_path: str | Path, *, factory: Callable[..., Any] | None = None) -> Any:
    """The one in-process demo Sandbox for this database (same object per state file, thread-safe)."""
    state = demo_state_path(db_path).resolve()
    with _demo_lock:
        sandbox = _demo_sandboxes.get(state)
        if sandbox is None:
            sandbox = _build_sandbox(state, factory)
            _demo_sandboxes[state] = sandbox
        return sandbox


def _build_sandbox(state: Path, factory: Callable[..., Any] | None) -> Any:
    # imported here: the sandbox is big, and only the demo shop and the tests need it
    from returns_core.tiktok.sandbox import Sandbox, SandboxStateError

    build = factory or Sandbox
    state.parent.mkdir(parents=True, exist_ok=True)
    try:
        return build(seed=DEMO_SEED, shops=1, returns=DEMO_RETURNS, state_path=state, cancellations=DEMO_CANCELLATIONS)
    except SandboxStateError as exc:
        # an unreadable or foreign state file must not stop the app: keep it aside, start afresh
        aside = state.with_name(state.name + ".bad")
        state.replace(aside)
        logger.warning("demo sandbox state moved to %s: %s", aside, exc)
        return build(seed=DEMO_SEED, shops=1, returns=DEMO_RETURNS, state_path=state, cancellations=DEMO_CANCELLATIONS)


def endpoints(db: Database, api_base: str, auth_base: str, transport: httpx.BaseTransport | None
              ) -> tuple[str, str, httpx.BaseTransport | None]:
    """Where a client for these bases really talks: sandbox:// bases go to the in-process demo sandbox."""
    if api_base.startswith(SANDBOX_SCHEME):
        if transport is None:
            transport = demo_sandbox(db.path).transport()
        return _SANDBOX_HTTP_BASE, _SANDBOX_HTTP_BASE, transport
    return api_base, auth_base, transport


def turned_off_by_environment() -> bool:
    """True when $RETURNS_DEMO says no (0, false, no, off): the app may not offer the demo."""
    return os.environ.get(DEMO_ENV, "").strip().lower() in _OFF_WORDS


def demo_enabled(db: Database) -> bool:
    """False when $RETURNS_DEMO=0 or the `demo_enabled` setting is off."""
    if turned_off_by_environment():
        return False
    value = settings.get_setting(db, DEMO_SETTING)
    return not (value and str(value).strip().lower() in _OFF_WORDS)


def ensure_demo_account(db: Database) -> Account | None:
    """Create "Demo Shop (sandbox)" when the store has no account at all; returns it, else None.

    Also reconnects an existing demo account that went Invalid (e.g. its sandbox state file was
    deleted, so the sandbox no longer knows its tokens): the demo must always just work.
    """
    with _demo_create_lock:
        existing = list_accounts(db)
        demo = next((a for a in existing if a.api_base == DEMO_API_BASE), None)
        if demo is not None and demo.status == INVALID:
            return _connect_demo(db, demo.name)
        if existing or not demo_enabled(db):
            return None
        return _connect_demo(db, DEMO_ACCOUNT_NAME)


def _connect_demo(db: Database, name: str) -> Account:
    # imported here: connecting routes sandbox:// bases back through `endpoints` in this module
    from returns_core.connect import add_accounts_with_tokens
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

    tokens = TokenSet.from_data(demo_sandbox(db.path).issue_tokens())
    accounts = add_accounts_with_tokens(db, name, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                        tokens.refresh_token, api_base=DEMO_API_BASE, auth_base=DEMO_API_BASE,
                                        is_sandbox=True, tokens=tokens)
    return accounts[0]


def start_live(db: Database, address: str, *, tick: float = 1.0) -> str | None:
    """In the app process only: the demo sandbox's world moves every `tick` seconds, and the demo
    account's webhooks go to `address` (the app's own receiver). Returns None (also when the store
    has no demo shop), or why not.

    A cron run never calls this, so its in-process sandbox neither ticks nor delivers.
    """
    from returns_core import webhooks  # webhooks reaches the demo sandbox through this module

    account = next((a for a in list_accounts(db) if a.api_base == DEMO_API_BASE), None)
    if account is None:
        return None  # no demo shop in this store: nothing to deliver
    if account.status != ACTIVE:
        return f"the demo shop is {account.status}"
    # subscribe before the clock starts, so no event goes to an address of an earlier run
    webhooks.subscribe(db, account, address)
    demo_sandbox(db.path).start_background(tick)
    return None


def stop_live(db_path: str | Path) -> None:
    """Stop the demo sandbox's clock and deliveries, if start_live started them."""
    with _demo_lock:
        sandbox = _demo_sandboxes.get(demo_state_path(db_path).resolve())
    if sandbox is not None:
        sandbox.stop_background()
