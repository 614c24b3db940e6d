"""Request signing, exactly as in docs/tiktok_api.md section 2.2.

Shared by the client (which signs) and the sandbox (which verifies), so both read the same rule.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

# Never part of the string to sign: `sign` itself and the legacy `access_token` query param.
_EXCLUDED = frozenset({"sign", "access_token"})


def string_to_sign(path: str, query: Mapping[str, str], body: bytes | None, app_secret: str,
                   content_type: str = "application/json") -> bytes:
    """The wrapped string: secret + path + sorted key+value pairs + raw body + secret."""
    parts = [path]
    for key in sorted(k for k in query if k not in _EXCLUDED):
        parts.append(f"{key}{query[key]}")
    head = "".join(parts).encode()
    # multipart bodies are not signed; every other body is signed byte for byte as sent
    tail = b"" if body is None or content_type.lower().startswith("multipart/form-data") else body
    secret = app_secret.encode()
    return secret + head + tail + secret


def sign(path: str, query: Mapping[str, str], body: bytes | None, app_secret: str,
         content_type: str = "application/json") -> str:
    """Lower-case hex HMAC-SHA256 of the wrapped string, keyed with the app secret."""
    message = string_to_sign(path, query, body, app_secret, content_type)
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def verify(path: str, query: Mapping[str, str], body: bytes | None, app_secret: str, given: str,
           content_type: str = "application/json") -> bool:
    """Constant-time check of a received `sign` value."""
    return hmac.compare_digest(sign(path, query, body, app_secret, content_type), given or "")


def webhook_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    """The `Authorization` header of a TikTok webhook: HMAC-SHA256(secret, app_key + raw body)."""
    return hmac.new(app_secret.encode(), app_key.encode() + raw_body, hashlib.sha256).hexdigest()
