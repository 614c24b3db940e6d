"""Encryption of tokens and app secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes, in order, from: an explicit value (the app passes one from secrets.toml),
$RETURNS_DESK_KEY, or a key file beside the database (`<db>.key`, mode 0600) created on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

ENV_KEY = "RETURNS_DESK_KEY"


class SecretKeyError(Exception):
    """The encryption key is missing, malformed, or not the one the data was encrypted with."""


def key_file_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".key")


def resolve_key(db_path: Path, explicit: str | None = None) -> bytes:
    """The key to use for this database, creating the key file when nothing else gives one."""
    for value in (explicit, os.environ.get(ENV_KEY)):
        if value:
            return value.strip().encode()
    path = key_file_for(db_path)
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # create with owner-only permissions from the start, never world-readable even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


class SecretBox:
    def __init__(self, key: bytes):
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "The encryption key is malformed: it must be a urlsafe-base64 Fernet key "
                f"(set {ENV_KEY} or fix the key file)."
            ) from exc

    def encrypt(self, plain: str | None) -> str | None:
        if plain is None:
            return None
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                "Stored credentials cannot be decrypted with this key: the key changed. "
                f"Restore the original key ({ENV_KEY} or the .key file beside the database) or reconnect the account."
            ) from exc
