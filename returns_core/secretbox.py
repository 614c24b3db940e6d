"""Encryption of tokens and app secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes, in order, from (the same for the app, the CLI and everything else):
1. `.streamlit/secrets.toml`, `[returns_desk] encryption_key` (read where Streamlit reads it);
2. $RETURNS_DESK_KEY;
3. a key file beside the database (`<db>.key`, mode 0600), created on first use, but never for
   a store that already holds encrypted secrets: a new key could not open them.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from returns_core.config import PROJECT_ROOT

ENV_KEY = "RETURNS_DESK_KEY"
SECRETS_SECTION, SECRETS_KEY = "returns_desk", "encryption_key"
KEY_SOURCES = (f"`.streamlit/secrets.toml` ([{SECRETS_SECTION}] {SECRETS_KEY}), {ENV_KEY}, "
               "or the .key file beside the database")


class SecretKeyError(Exception):
    """The encryption key is missing, malformed, or not the one the data was encrypted with."""


def key_file_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".key")


def secrets_files() -> list[Path]:
    """Where Streamlit reads secrets.toml, in its order (a later file wins): the user's
    ~/.streamlit, the working folder's .streamlit, and the app's own (beside app.py)."""
    places = []
    for where in (Path.home, Path.cwd):
        # no home folder (a bare service account), a deleted working folder: look elsewhere
        with contextlib.suppress(RuntimeError, OSError):
            places.append(where())
    places.append(PROJECT_ROOT)
    return list(dict.fromkeys((place / ".streamlit" / "secrets.toml").resolve() for place in places))


def read_secrets_toml() -> dict[str, Any]:
    """secrets.toml as the app sees it (Streamlit merges the files' top-level entries, a later file winning)."""
    merged: dict[str, Any] = {}
    for path in secrets_files():
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretKeyError(f"Cannot read {path}: {exc}. Fix the file or its permissions.") from None
        try:
            merged.update(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise SecretKeyError(f"{path} is not valid TOML ({exc}); fix the file.") from None
    return merged


def configured_key(secrets: Mapping[str, Any] | None = None) -> str | None:
    """The key the configuration gives: secrets.toml's [returns_desk] encryption_key, else
    $RETURNS_DESK_KEY; None when neither has one (then the key file beside the database is used).

    `secrets` is secrets.toml as already read (the app passes Streamlit's st.secrets, which also
    honours secrets set by tests); None reads the files where Streamlit reads them (the CLI).
    """
    if secrets is None:
        secrets = read_secrets_toml()
    section = secrets.get(SECRETS_SECTION)
    value = section.get(SECRETS_KEY) if isinstance(section, Mapping) else None
    text = str(value).strip() if value else ""
    return text or os.environ.get(ENV_KEY, "").strip() or None


def resolve_key(db_path: Path, explicit: str | None = None, *,
                holds_secrets: Callable[[], bool] = lambda: False) -> bytes:
    """The key to use for this database: `explicit`, else the configured one, else the key file,
    which is created when there is none, unless `holds_secrets()` says the store already keeps
    secrets encrypted with a key that is now missing."""
    key = explicit or configured_key()
    if key:
        return key.strip().encode()
    path = key_file_for(db_path)
    if path.exists():
        return path.read_bytes().strip()
    if holds_secrets():
        raise SecretKeyError(
            f"The store {db_path.name} holds encrypted credentials, but its key was not found in "
            f"{KEY_SOURCES}: put the key back there (a new key could not open them).")
    path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = Fernet.generate_key()
    # create with owner-only permissions from the start, never world-readable even briefly
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes + b"\n")
    return key_bytes


class SecretBox:
    def __init__(self, key: bytes):
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "The encryption key is malformed: it must be a urlsafe-base64 Fernet key "
                f"(fix it in {KEY_SOURCES})."
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
                f"Restore the original key ({KEY_SOURCES}) or reconnect the account."
            ) from exc
