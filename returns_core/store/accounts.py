"""The accounts table: every statement that reads or writes a connected shop.

Secrets cross this module in clear and are stored only as the database SecretBox's ciphertext
(the `*_enc` columns), so neither the file nor its WAL ever holds a token. Reads of accounts
return plain records ({column: value}); `returns_core.accounts` turns them into `Account`.

Shops connected with one authorization share a grant (`grant_id`): each account keeps a copy of the
grant's tokens, and the copies are only ever written together (`save_tokens`), so every shop holds
the refresh token TikTok issued last.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from returns_core.secretbox import SecretKeyError
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
    """An account's credentials in clear, only for building its TikTok client.

    With them, two things that are not secret: the grant whose tokens these are (None for an
    account from before grants were recorded, see `link_grants`) and whether it is marked Invalid.
    """

    app_secret: str | None = field(repr=False)
    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    grant_id: str | None = None
    invalid: bool = False


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
    row = db.row("SELECT app_secret_enc, access_token_enc, refresh_token_enc, grant_id, auth_state = 'invalid' "
                 "FROM accounts WHERE shop_id = ?", [shop_id])
    if row is None:
        return None
    box = db.box
    return Secrets(*(box.decrypt(value) for value in row[:3]), grant_id=row[3], invalid=row[4])


def grant_tokens(db: Database, grant_id: str) -> Tokens | None:
    """The tokens of a grant as stored (every account of the grant holds the same); None when no
    account holds the grant any more (reconnected or removed)."""
    row = db.row("SELECT access_token_enc, refresh_token_enc, access_token_expires_at, refresh_token_expires_at "
                 "FROM accounts WHERE grant_id = ? ORDER BY updated_at DESC, shop_id LIMIT 1", [grant_id])
    if row is None:
        return None
    box = db.box
    return Tokens(box.decrypt(row[0]) or "", box.decrypt(row[1]), row[2], row[3])


# --- writes -------------------------------------------------------------------------------------

_UPSERT_CONNECTED = (
    "INSERT INTO accounts (shop_id, name, shop_name, region, shop_cipher, app_key, app_secret_enc, "
    "access_token_enc, refresh_token_enc, access_token_expires_at, refresh_token_expires_at, api_base, "
    "auth_base, is_sandbox, grant_id, enabled, auth_state, auth_error, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true, 'ok', NULL, ?, ?) "
    # a reconnect keeps the account's name, enabled flag and created_at; it clears Invalid and
    # moves the shop to the new grant
    "ON CONFLICT (shop_id) DO UPDATE SET shop_name = excluded.shop_name, region = excluded.region, "
    "shop_cipher = excluded.shop_cipher, app_key = excluded.app_key, "
    "app_secret_enc = excluded.app_secret_enc, access_token_enc = excluded.access_token_enc, "
    "refresh_token_enc = excluded.refresh_token_enc, "
    "access_token_expires_at = excluded.access_token_expires_at, "
    "refresh_token_expires_at = excluded.refresh_token_expires_at, api_base = excluded.api_base, "
    "auth_base = excluded.auth_base, is_sandbox = excluded.is_sandbox, grant_id = excluded.grant_id, "
    "auth_state = 'ok', auth_error = NULL, updated_at = excluded.updated_at")


def new_grant_id() -> str:
    """A name for one seller authorization; it also names the grant's files beside the store."""
    return secrets.token_hex(8)


def upsert_connected(db: Database, shops: Sequence[ConnectedShop], *, app_key: str, app_secret: str,
                     tokens: Tokens, api_base: str, auth_base: str, is_sandbox: bool) -> None:
    """Add each shop as an account, or reconnect it with these credentials, in one transaction.

    The shops share one grant: the tokens are one authorization, refreshed once for all of them.
    An account elsewhere holding these very tokens is the same authorization and joins the grant.
    """
    box = db.box
    secrets_enc = (box.encrypt(app_secret), box.encrypt(tokens.access_token), box.encrypt(tokens.refresh_token))
    now = utcnow()
    grant_id = new_grant_id()
    with db.writer() as con:
        for shop in shops:
            con.execute(_UPSERT_CONNECTED, [
                shop.shop_id, shop.name, shop.shop_name, shop.region, shop.shop_cipher, app_key, *secrets_enc,
                tokens.access_expires_at, tokens.refresh_expires_at, api_base, auth_base, is_sandbox, grant_id,
                now, now])
        _link_grants(con, box, prefer=grant_id)


def link_grants(db: Database) -> None:
    """Give accounts from before grants were recorded their grant: one per set of identical tokens."""
    with db.writer() as con:
        _link_grants(con, db.box)


def _link_grants(con: Any, box: Any, prefer: str | None = None) -> None:
    """Accounts holding the same tokens of one app are one authorization: put them in one grant
    (`prefer` when it is among theirs, as a new connection is; else one they have, else a new one)."""
    groups: dict[tuple, list[tuple[str, str | None]]] = {}
    for shop_id, grant_id, app_key, auth_base, access_enc, refresh_enc in con.execute(
            "SELECT shop_id, grant_id, app_key, auth_base, access_token_enc, refresh_token_enc FROM accounts "
            "ORDER BY shop_id").fetchall():
        try:
            token = box.decrypt(refresh_enc) or box.decrypt(access_enc)
        except SecretKeyError:
            token = None  # kept under another key: it cannot be matched, so it stays on its own
        key = (app_key, auth_base, token) if token else ("", "", shop_id)
        groups.setdefault(key, []).append((shop_id, grant_id))
    for members in groups.values():
        held = sorted({grant_id for _, grant_id in members if grant_id})
        target = prefer if prefer in held else (held[0] if held else new_grant_id())
        for shop_id, grant_id in members:
            if grant_id != target:
                con.execute("UPDATE accounts SET grant_id = ? WHERE shop_id = ?", [target, shop_id])


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


def save_tokens(db: Database, grant_id: str, tokens: Tokens) -> int:
    """Replace the tokens (encrypted) of every account of the grant, in one transaction; returns how many.

    Validity is not decided here: a refresh proves the grant alive, not that each shop is still
    in it (returns_core.tiktok_session marks an account valid when TikTok answers a call for it).
    """
    box = db.box
    with db.writer() as con:
        found = con.execute(
            "UPDATE accounts SET access_token_enc = ?, refresh_token_enc = ?, access_token_expires_at = ?, "
            "refresh_token_expires_at = ?, updated_at = ? WHERE grant_id = ?",
            [box.encrypt(tokens.access_token), box.encrypt(tokens.refresh_token), tokens.access_expires_at,
             tokens.refresh_expires_at, utcnow(), grant_id]).fetchone()
    return int(found[0]) if found else 0
