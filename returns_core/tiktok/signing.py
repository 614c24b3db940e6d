"""Request signing, exactly as in docs/tiktok_api.md section 2.2, and the webhook signature of section 7.

Shared by the client (which signs requests), the sandbox (which verifies requests and signs the webhooks
it sends) and the app's webhook receiver (which verifies them), so all read the same rule.
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
    """The `Authorization` header of a TikTok webhook (docs section 7): lower-case hex
    HMAC-SHA256 keyed with the app secret over app_key + the raw body, byte for byte as sent."""
    return hmac.new(app_secret.encode(), app_key.encode() + raw_body, hashlib.sha256).hexdigest()


def verify_webhook(app_key: str, app_secret: str, body: bytes, authorization_header: str | None) -> bool:
    """Constant-time check of a received webhook's `Authorization` header against its raw body.

    Never re-serialize the body before calling this: TikTok signed the bytes it sent. A missing or
    empty header (or an empty secret, which would make every forger right) is a plain False.
    """
    if not app_secret or not isinstance(authorization_header, str):
        return False
    given = authorization_header.strip()
    if not given:
        return False
    expected = webhook_signature(app_key, app_secret, body)
    # as bytes: compare_digest refuses non-ASCII str, and a header is attacker-chosen
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape"))
