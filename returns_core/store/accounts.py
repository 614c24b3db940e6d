"""The accounts table: every statement that reads or writes a connected shop.

Secrets cross this module in clear and are stored only as the database SecretBox's ciphertext
(the `*_enc` columns), so neither the file nor its WAL ever holds a token. Reads of accounts
return plain records ({column: value}); `returns_core.accounts` turns them into `Account`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from returns_core.store.db import Database, utcnow

# The Account's fields in its order. has_refresh_token lets the status tell Expired apart
# without reading (or decrypting) a secret.
_ACCOUNT_COLUMNS = ("shop_id", "name", "shop_name", "region", "shop_cipher", "app_key", "api_base", "auth_base",
                    "is_sandbox", "enabled", "auth_state", "auth_error", "access_token_expires_at",
                    "refresh_token_expires_at", "created_at", "updated_at",
                    "refresh_token_enc IS NOT NULL AS has_refresh_token")
_FIELDS = tuple(column.split(" AS ")[-1] for column in _ACCOUNT_COLUMNS)
_SELECT = f"SELECT {', '.join(_ACCOUNT_COLUMNS)} FROM accounts"
# auth_error is shown on the Accounts page: one readable reason, never an essay
MAX_REASON_LENGTH = 500


@dataclass(frozen=True)
class Tokens:
    """A shop's tokens in clear with their expiry (naive UTC). The repr never shows a token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    access_expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None


@dataclass(frozen=True)
class Secrets:
    """An account's credentials in clear, only for building its TikTok client."""

    app_secret: str | None = field(repr=False)
    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)


@dataclass(frozen=True)
class ConnectedShop:
    """One shop to add or reconnect, as TikTok listed it for the tokens, under its account name."""

    shop_id: str
    name: str
    shop_name: str | None
    region: str | None
    shop_cipher: str | None


def _records(rows: Sequence[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(_FIELDS, row, strict=True)) for row in rows]


# --- reads --------------------------------------------------------------------------------------


def all_accounts(db: Database) -> list[dict[str, Any]]:
    """Every account, by name."""
    return _records(db.rows(f"{_SELECT} ORDER BY lower(name), shop_id"))


def matching(db: Database, key: str) -> list[dict[str, Any]]:
    """The accounts named `key` exactly or with that shop id; failing that, named so in any case."""
    with db.reader() as con:
        rows = con.execute(f"{_SELECT} WHERE name = ? OR shop_id = ?", [key, key]).fetchall()
        if not rows:
            rows = con.execute(f"{_SELECT} WHERE lower(name) = lower(?)", [key]).fetchall()
    return _records(rows)


def by_shop_id(db: Database, shop_id: str) -> dict[str, Any] | None:
    """The account of this shop, or None."""
    return _one(db, "shop_id", shop_id)


def by_name(db: Database, name: str) -> dict[str, Any] | None:
    """The account with this name in any case, or None (names are unique regardless of case)."""
    return _one(db, "name", name)


def _one(db: Database, column: str, value: str) -> dict[str, Any] | None:
    where = "lower(name) = lower(?)" if column == "name" else "shop_id = ?"
    found = db.row(f"{_SELECT} WHERE {where}", [value])
    return _records([found])[0] if found else None


def secrets_for(db: Database, shop_id: str) -> Secrets | None:
    """The account's app secret and tokens, decrypted; None when the account is gone.

    Raises SecretKeyError when the key is not the one they were encrypted with.
    """
    row = db.row("SELECT app_secret_enc, access_token_enc, refresh_token_enc FROM accounts WHERE shop_id = ?",
                 [shop_id])
    if row is None:
        return None
    box = db.box
    return Secrets(*(box.decrypt(value) for value in row))


# --- writes -------------------------------------------------------------------------------------

_UPSERT_CONNECTED = (
    "INSERT INTO accounts (shop_id, name, shop_name, region, shop_cipher, app_key, app_secret_enc, "
    "access_token_enc, refresh_token_enc, access_token_expires_at, refresh_token_expires_at, api_base, "
    "auth_base, is_sandbox, enabled, auth_state, auth_error, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true, 'ok', NULL, ?, ?) "
    # a reconnect keeps the account's name, enabled flag and created_at; it clears Invalid
    "ON CONFLICT (shop_id) DO UPDATE SET shop_name = excluded.shop_name, region = excluded.region, "
    "shop_cipher = excluded.shop_cipher, app_key = excluded.app_key, "
    "app_secret_enc = excluded.app_secret_enc, access_token_enc = excluded.access_token_enc, "
    "refresh_token_enc = excluded.refresh_token_enc, "
    "access_token_expires_at = excluded.access_token_expires_at, "
    "refresh_token_expires_at = excluded.refresh_token_expires_at, api_base = excluded.api_base, "
    "auth_base = excluded.auth_base, is_sandbox = excluded.is_sandbox, auth_state = 'ok', "
    "auth_error = NULL, updated_at = excluded.updated_at")


def upsert_connected(db: Database, shops: Sequence[ConnectedShop], *, app_key: str, app_secret: str,
                     tokens: Tokens, api_base: str, auth_base: str, is_sandbox: bool) -> None:
    """Add each shop as an account, or reconnect it with these credentials, in one transaction."""
    box = db.box
    secrets = (box.encrypt(app_secret), box.encrypt(tokens.access_token), box.encrypt(tokens.refresh_token))
    now = utcnow()
    with db.writer() as con:
        for shop in shops:
            con.execute(_UPSERT_CONNECTED, [
                shop.shop_id, shop.name, shop.shop_name, shop.region, shop.shop_cipher, app_key, *secrets,
                tokens.access_expires_at, tokens.refresh_expires_at, api_base, auth_base, is_sandbox, now, now])


def set_enabled(db: Database, shop_id: str, enabled: bool) -> None:
    """Turn syncing of the account on or off."""
    with db.writer() as con:
        con.execute("UPDATE accounts SET enabled = ?, updated_at = ? WHERE shop_id = ?", [enabled, utcnow(), shop_id])


def mark_invalid(db: Database, shop_id: str, reason: str) -> None:
    """Record that TikTok refused the account's authorization, and why."""
    with db.writer() as con:
        con.execute("UPDATE accounts SET auth_state = 'invalid', auth_error = ?, updated_at = ? WHERE shop_id = ?",
                    [reason[:MAX_REASON_LENGTH], utcnow(), shop_id])


def mark_valid(db: Database, shop_id: str) -> None:
    """Clear an Invalid flag (a no-op for an account that was fine)."""
    with db.writer() as con:
        con.execute("UPDATE accounts SET auth_state = 'ok', auth_error = NULL, updated_at = ? "
                    "WHERE shop_id = ? AND auth_state <> 'ok'", [utcnow(), shop_id])


def save_tokens(db: Database, shop_id: str, tokens: Tokens) -> None:
    """Replace the account's tokens (encrypted); TikTok accepted them, so the account is valid again."""
    box = db.box
    with db.writer() as con:
        con.execute(
            "UPDATE accounts SET access_token_enc = ?, refresh_token_enc = ?, access_token_expires_at = ?, "
            "refresh_token_expires_at = ?, auth_state = 'ok', auth_error = NULL, updated_at = ? WHERE shop_id = ?",
            [box.encrypt(tokens.access_token), box.encrypt(tokens.refresh_token), tokens.access_expires_at,
             tokens.refresh_expires_at, utcnow(), shop_id])
