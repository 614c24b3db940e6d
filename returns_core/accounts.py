"""TikTok Shop accounts: connect (tokens or auth code), reconnect, disable, test, and the demo shop.

One account is one shop (keyed by TikTok's shop id). App secrets and tokens are encrypted at rest
with the database's SecretBox and never leave this module in clear, except inside the client
that needs them: `Account` holds no secret, so it is safe to show, log and cache.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from returns_core.config import DEFAULT_API_BASE, DEFAULT_AUTH_BASE
from returns_core.store.db import Database, utcnow
from returns_core.tiktok import errors
from returns_core.tiktok.client import AuthClient, TikTokClient, TokenSet

logger = logging.getLogger(__name__)

ACTIVE, EXPIRED, DISABLED, INVALID = "Active", "Expired", "Disabled", "Invalid"
ACCOUNT_STATUSES = (ACTIVE, EXPIRED, DISABLED, INVALID)

SANDBOX_SCHEME = "sandbox://"
DEMO_API_BASE = "sandbox://demo"
DEMO_ACCOUNT_NAME = "Demo Shop (sandbox)"
DEMO_SEED = 7
DEMO_RETURNS = 2000
DEMO_ENV = "RETURNS_DEMO"
DEMO_SETTING = "demo_enabled"
# what httpx sees for a sandbox:// account: any host works with an in-process transport
_SANDBOX_HTTP_BASE = "http://sandbox.invalid"
MAX_NAME_LENGTH = 100

REAUTH_REASON = "Authorization was revoked or expired: reconnect the shop on the Accounts page"


class AccountError(ValueError):
    """An account operation refused, with a one-line message for the user."""


class AccountNotFoundError(AccountError, LookupError):
    """No account has that name or shop id."""


@dataclass(frozen=True)
class Account:
    """A connected shop as users see it. Holds no secret."""

    shop_id: str
    name: str
    shop_name: str | None
    region: str | None
    shop_cipher: str | None
    app_key: str
    api_base: str
    auth_base: str
    is_sandbox: bool
    enabled: bool
    auth_state: str
    auth_error: str | None
    access_token_expires_at: datetime | None
    refresh_token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    has_refresh_token: bool = True

    @property
    def status(self) -> str:
        """Active, Expired, Disabled or Invalid (see the Accounts page)."""
        return self.status_at(utcnow())

    def status_at(self, now: datetime) -> str:
        """The status as of `now` (naive UTC)."""
        if not self.enabled:
            return DISABLED
        if self.auth_state == "invalid":
            return INVALID
        refresh_expired = self.refresh_token_expires_at is not None and self.refresh_token_expires_at <= now
        access_expired = self.access_token_expires_at is not None and self.access_token_expires_at <= now
        if refresh_expired or (access_expired and not self.has_refresh_token):
            return EXPIRED
        return ACTIVE

    @property
    def usable(self) -> bool:
        """True when a sync can run for this account."""
        return self.status == ACTIVE

    @property
    def label(self) -> str:
        """Name and shop, for selectors."""
        return f"{self.name} ({self.shop_id})"


_ACCOUNT_COLUMNS = ("shop_id", "name", "shop_name", "region", "shop_cipher", "app_key", "api_base", "auth_base",
                    "is_sandbox", "enabled", "auth_state", "auth_error", "access_token_expires_at",
                    "refresh_token_expires_at", "created_at", "updated_at",
                    "refresh_token_enc IS NOT NULL AS has_refresh_token")
_SELECT = f"SELECT {', '.join(_ACCOUNT_COLUMNS)} FROM accounts"


def _account(row: tuple) -> Account:
    return Account(*row)


def list_accounts(db: Database) -> list[Account]:
    """Every account, by name."""
    with db.reader() as con:
        return [_account(r) for r in con.execute(f"{_SELECT} ORDER BY lower(name), shop_id").fetchall()]


def get_account(db: Database, name_or_shop_id: str) -> Account:
    """The account with this name (exact, then case-insensitive) or shop id."""
    key = (name_or_shop_id or "").strip()
    with db.reader() as con:
        rows = con.execute(f"{_SELECT} WHERE name = ? OR shop_id = ?", [key, key]).fetchall()
        if not rows:
            rows = con.execute(f"{_SELECT} WHERE lower(name) = lower(?)", [key]).fetchall()
    if len(rows) != 1:
        raise AccountNotFoundError(f"No account named {key!r}; see `accounts list`.")
    return _account(rows[0])


def _find_by(db: Database, column: str, value: str) -> Account | None:
    where = "lower(name) = lower(?)" if column == "name" else "shop_id = ?"
    with db.reader() as con:
        row = con.execute(f"{_SELECT} WHERE {where}", [value]).fetchone()
    return _account(row) if row else None


# --- connecting ---------------------------------------------------------------------------------


def _ts(value: int | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None


def _clean_name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise AccountError("Give the account a name.")
    if len(clean) > MAX_NAME_LENGTH:
        raise AccountError(f"The account name is too long ({len(clean)} characters; at most {MAX_NAME_LENGTH}).")
    return clean


def _required(label: str, value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise AccountError(f"The {label} is required.")
    return text


def _route(db: Database, api_base: str, auth_base: str, transport: httpx.BaseTransport | None
           ) -> tuple[str, str, httpx.BaseTransport | None]:
    """Where the client really talks: sandbox:// bases go to the in-process demo sandbox."""
    if api_base.startswith(SANDBOX_SCHEME):
        if transport is None:
            transport = demo_sandbox(db.path).transport()
        return _SANDBOX_HTTP_BASE, _SANDBOX_HTTP_BASE, transport
    return api_base, auth_base, transport


def _select_shops(shops: list[dict], shop_cipher: str | None) -> list[dict]:
    usable = [s for s in shops if isinstance(s, dict) and s.get("id")]
    if shop_cipher:
        usable = [s for s in usable if s.get("cipher") == shop_cipher]
        if not usable:
            raise AccountError("The token does not authorize a shop with that shop cipher.")
    if not usable:
        raise AccountError("The token authorizes no shop: authorize a shop for this app in TikTok Shop first.")
    return usable


def _plan_names(db: Database, name: str, shops: list[dict]) -> list[tuple[dict, str, bool]]:
    """(shop, account name, is_reconnect) per shop; raises before anything is written."""
    plans = []
    for shop in shops:
        shop_name = str(shop.get("name") or shop["id"])
        account_name = name if len(shops) == 1 else f"{name} - {shop_name}"
        if len(account_name) > MAX_NAME_LENGTH:
            account_name = account_name[:MAX_NAME_LENGTH]
        by_shop = _find_by(db, "shop_id", str(shop["id"]))
        if by_shop is not None and by_shop.name != account_name:
            raise AccountError(
                f"Shop {shop_name} ({shop['id']}) is already connected as {by_shop.name!r}; "
                f"reconnect it under that name.")
        by_name = _find_by(db, "name", account_name)
        if by_name is not None and by_name.shop_id != str(shop["id"]):
            raise AccountError(f"The name {account_name!r} is already used by shop {by_name.shop_id}; choose another.")
        plans.append((shop, account_name, by_shop is not None))
    return plans


def _connect(db: Database, name: str, app_key: str, app_secret: str, tokens: TokenSet | None,
             access_token: str, refresh_token: str | None, *, shop_cipher: str | None, api_base: str,
             auth_base: str, is_sandbox: bool, transport: httpx.BaseTransport | None) -> list[Account]:
    """Ask TikTok which shops the token covers, then add or reconnect one account per shop."""
    name = _clean_name(name)
    app_key = _required("app key", app_key)
    app_secret = _required("app secret", app_secret)
    access_token = _required("access token", access_token)
    real_api, real_auth, real_transport = _route(db, api_base, auth_base, transport)
    holder: dict[str, Any] = {"tokens": tokens}

    def remember(new: TokenSet) -> None:
        holder["tokens"] = new

    with TikTokClient(app_key, app_secret, access_token, refresh_token, api_base=real_api, auth_base=real_auth,
                      transport=real_transport, on_token_refresh=remember) as client:
        shops = client.get_authorized_shops()
    final: TokenSet | None = holder["tokens"]
    if final is not None:
        access_token, refresh_token = final.access_token, final.refresh_token
    plans = _plan_names(db, name, _select_shops(shops, shop_cipher))
    box = db.box
    now = utcnow()
    secrets = (box.encrypt(app_secret), box.encrypt(access_token), box.encrypt(refresh_token))
    access_exp = _ts(final.access_token_expires_at) if final else None
    refresh_exp = _ts(final.refresh_token_expires_at) if final else None
    with db.writer() as con:
        for shop, account_name, _ in plans:
            con.execute(
                "INSERT INTO accounts (shop_id, name, shop_name, region, shop_cipher, app_key, app_secret_enc, "
                "access_token_enc, refresh_token_enc, access_token_expires_at, refresh_token_expires_at, api_base, "
                "auth_base, is_sandbox, enabled, auth_state, auth_error, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true, 'ok', NULL, ?, ?) "
                "ON CONFLICT (shop_id) DO UPDATE SET shop_name = excluded.shop_name, region = excluded.region, "
                "shop_cipher = excluded.shop_cipher, app_key = excluded.app_key, "
                "app_secret_enc = excluded.app_secret_enc, access_token_enc = excluded.access_token_enc, "
                "refresh_token_enc = excluded.refresh_token_enc, "
                "access_token_expires_at = excluded.access_token_expires_at, "
                "refresh_token_expires_at = excluded.refresh_token_expires_at, api_base = excluded.api_base, "
                "auth_base = excluded.auth_base, is_sandbox = excluded.is_sandbox, auth_state = 'ok', "
                "auth_error = NULL, updated_at = excluded.updated_at",
                [str(shop["id"]), account_name, shop.get("name"), shop.get("region"), shop.get("cipher"), app_key,
                 *secrets, access_exp, refresh_exp, api_base, auth_base, is_sandbox, now, now])
    for _, account_name, reconnect in plans:
        logger.info("%s account %s", "reconnected" if reconnect else "added", account_name)
    return [get_account(db, str(shop["id"])) for shop, _, _ in plans]


def add_accounts_with_tokens(db: Database, name: str, app_key: str, app_secret: str, access_token: str,
                             refresh_token: str | None, *, shop_cipher: str | None = None,
                             api_base: str = DEFAULT_API_BASE, auth_base: str = DEFAULT_AUTH_BASE,
                             is_sandbox: bool = False, transport: httpx.BaseTransport | None = None,
                             tokens: TokenSet | None = None) -> list[Account]:
    """Connect every shop the tokens authorize (or only `shop_cipher`'s); same name again = reconnect."""
    return _connect(db, name, app_key, app_secret, tokens, access_token, refresh_token, shop_cipher=shop_cipher,
                    api_base=api_base, auth_base=auth_base, is_sandbox=is_sandbox, transport=transport)


def add_accounts_with_auth_code(db: Database, name: str, app_key: str, app_secret: str, auth_code: str, *,
                                shop_cipher: str | None = None, api_base: str = DEFAULT_API_BASE,
                                auth_base: str = DEFAULT_AUTH_BASE, is_sandbox: bool = False,
                                transport: httpx.BaseTransport | None = None) -> list[Account]:
    """Exchange a seller's authorization code for tokens, then connect as add_accounts_with_tokens."""
    _clean_name(name)
    code = _required("authorization code", auth_code)
    _, real_auth, real_transport = _route(db, api_base, auth_base, transport)
    with AuthClient(_required("app key", app_key), _required("app secret", app_secret), auth_base=real_auth,
                    transport=real_transport) as auth:
        tokens = auth.get_token(code)
    return _connect(db, name, app_key, app_secret, tokens, tokens.access_token, tokens.refresh_token,
                    shop_cipher=shop_cipher, api_base=api_base, auth_base=auth_base, is_sandbox=is_sandbox,
                    transport=transport)


# --- state changes ------------------------------------------------------------------------------


def set_enabled(db: Database, name: str, enabled: bool) -> Account:
    """Enable or disable an account (a disabled account is never synced)."""
    account = get_account(db, name)
    with db.writer() as con:
        con.execute("UPDATE accounts SET enabled = ?, updated_at = ? WHERE shop_id = ?",
                    [enabled, utcnow(), account.shop_id])
    return get_account(db, account.shop_id)


def mark_invalid(db: Database, shop_id: str, reason: str) -> None:
    """Flag the account's authorization as refused (status Invalid) with a readable reason."""
    with db.writer() as con:
        con.execute("UPDATE accounts SET auth_state = 'invalid', auth_error = ?, updated_at = ? WHERE shop_id = ?",
                    [reason[:500], utcnow(), shop_id])


def mark_valid(db: Database, shop_id: str) -> None:
    """Clear an Invalid flag after TikTok accepted the account's tokens again."""
    with db.writer() as con:
        con.execute("UPDATE accounts SET auth_state = 'ok', auth_error = NULL, updated_at = ? "
                    "WHERE shop_id = ? AND auth_state <> 'ok'", [utcnow(), shop_id])


def save_tokens(db: Database, shop_id: str, tokens: TokenSet) -> None:
    """Persist refreshed tokens (encrypted) right away: TikTok rotates the refresh token."""
    box = db.box
    with db.writer() as con:
        con.execute(
            "UPDATE accounts SET access_token_enc = ?, refresh_token_enc = ?, access_token_expires_at = ?, "
            "refresh_token_expires_at = ?, auth_state = 'ok', auth_error = NULL, updated_at = ? WHERE shop_id = ?",
            [box.encrypt(tokens.access_token), box.encrypt(tokens.refresh_token),
             _ts(tokens.access_token_expires_at), _ts(tokens.refresh_token_expires_at), utcnow(), shop_id])


def client_for(db: Database, account: Account, *, transport: httpx.BaseTransport | None = None,
               **options: Any) -> TikTokClient:
    """A TikTokClient for this account; refreshed tokens are saved (encrypted) as they arrive."""
    with db.reader() as con:
        row = con.execute("SELECT app_secret_enc, access_token_enc, refresh_token_enc FROM accounts "
                          "WHERE shop_id = ?", [account.shop_id]).fetchone()
    if row is None:
        raise AccountNotFoundError(f"The account {account.name!r} no longer exists.")
    box = db.box
    app_secret, access_token, refresh_token = (box.decrypt(v) for v in row)
    if not access_token:
        raise AccountError(f"The account {account.name!r} has no access token: reconnect it.")
    api_base, auth_base, transport = _route(db, account.api_base, account.auth_base, transport)
    shop_id = account.shop_id

    def persist(tokens: TokenSet) -> None:
        save_tokens(db, shop_id, tokens)

    return TikTokClient(account.app_key, app_secret or "", access_token, refresh_token, account.shop_cipher,
                        api_base=api_base, auth_base=auth_base, transport=transport, on_token_refresh=persist,
                        **options)


CLOCK_REASON = "TikTok refused the request time: this computer's clock is off; correct it (use NTP) and retry"


def authorization_refused(exc: BaseException) -> bool:
    """True when TikTok refused the shop's authorization itself (the account must be reconnected).

    36009004 is reused for a bad timestamp too (docs section 6): a wrong local clock is not a
    revoked authorization, so it must not mark the account Invalid.
    """
    return isinstance(exc, errors.AuthError) and not _clock_problem(exc)


def _clock_problem(exc: BaseException) -> bool:
    return (isinstance(exc, errors.AuthError) and exc.code == errors.COMMON_PARAM_INVALID
            and "timestamp" in (exc.message or "").lower())


def explain_error(exc: BaseException) -> str:
    """A failure talking to TikTok as one readable line (never a secret)."""
    if _clock_problem(exc):
        return f"{CLOCK_REASON} ({exc})"
    if isinstance(exc, errors.AuthError):
        return f"{REAUTH_REASON} ({exc})"
    if isinstance(exc, errors.RateLimitedError):
        return f"TikTok kept refusing with 'too many requests'; try again in a few minutes ({exc})"
    if isinstance(exc, errors.ServerError):
        return f"TikTok had a server error; try again later ({exc})"
    if isinstance(exc, errors.TransportError):
        return f"Cannot reach TikTok: {exc}"
    if isinstance(exc, errors.MalformedResponseError):
        return f"TikTok sent an unreadable answer: {exc}"
    if isinstance(exc, errors.TikTokError):
        return f"TikTok refused the request: {exc}"
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def test_connection(db: Database, account: Account, *, transport: httpx.BaseTransport | None = None) -> str:
    """Ask TikTok which shops the account's token covers; marks the account Invalid when refused."""
    try:
        with client_for(db, account, transport=transport) as client:
            shops = client.get_authorized_shops()
    except errors.TikTokError as exc:
        if not authorization_refused(exc):
            return f"Failed: {explain_error(exc)}"
        reason = explain_error(exc)
        mark_invalid(db, account.shop_id, reason)
        return f"Failed: {reason}"
    ids = {str(s.get("id")) for s in shops if isinstance(s, dict)}
    if account.shop_id not in ids:
        reason = f"The token no longer authorizes shop {account.shop_id}: reconnect the shop on the Accounts page"
        mark_invalid(db, account.shop_id, reason)
        return f"Failed: {reason}"
    mark_valid(db, account.shop_id)
    return f"OK: TikTok accepts the token for {account.shop_name or account.shop_id} ({len(ids)} shop(s) authorized)."


test_connection.__test__ = False  # a product function, not a pytest test


# --- the demo shop ------------------------------------------------------------------------------

_demo_lock = threading.Lock()
_demo_sandboxes: dict[Path, Any] = {}


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
            from returns_core.tiktok.sandbox import Sandbox, SandboxStateError

            build = factory or Sandbox
            state.parent.mkdir(parents=True, exist_ok=True)
            try:
                sandbox = build(seed=DEMO_SEED, shops=1, returns=DEMO_RETURNS, state_path=state)
            except SandboxStateError as exc:
                # an unreadable or foreign state file must not stop the app: keep it aside, start afresh
                aside = state.with_name(state.name + ".bad")
                state.replace(aside)
                logger.warning("demo sandbox state moved to %s: %s", aside, exc)
                sandbox = build(seed=DEMO_SEED, shops=1, returns=DEMO_RETURNS, state_path=state)
            _demo_sandboxes[state] = sandbox
        return sandbox


def demo_enabled(db: Database) -> bool:
    """False when $RETURNS_DEMO=0 or the `demo_enabled` setting is off."""
    if os.environ.get(DEMO_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return False
    with db.reader() as con:
        row = con.execute("SELECT value FROM settings WHERE key = ?", [DEMO_SETTING]).fetchone()
    return not (row and str(row[0]).strip().lower() in ("0", "false", "no", "off"))


_demo_create_lock = threading.Lock()


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
    from returns_core.tiktok.sandbox import SANDBOX_APP_KEY, SANDBOX_APP_SECRET

    tokens = TokenSet.from_data(demo_sandbox(db.path).issue_tokens())
    accounts = add_accounts_with_tokens(db, name, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, tokens.access_token,
                                        tokens.refresh_token, api_base=DEMO_API_BASE, auth_base=DEMO_API_BASE,
                                        is_sandbox=True, tokens=tokens)
    return accounts[0]
