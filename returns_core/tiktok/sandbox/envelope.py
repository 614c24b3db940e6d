"""TikTok's response envelope {code, message, request_id, data} and the HTTP status for each code."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .. import errors

SUCCESS_MESSAGE = "Success"

# docs section 6: credentials 401, malformed requests 400, rate limit 429, unknown path 404;
# business errors (25xxxxxx, 36004004) are HTTP 200 with a non-zero code.
_HTTP_STATUS = {
    errors.SIGN_INVALID: 401,
    errors.TOKEN_EXPIRED: 401,
    errors.COMMON_PARAM_INVALID: 400,
    errors.INVALID_PARAMETER: 400,
    errors.BODY_NOT_JSON: 400,
    errors.SHOP_CIPHER_MISSING: 400,
    errors.TOKEN_SHOP_MISMATCH: 403,
    errors.TOO_MANY_REQUESTS: 429,
    errors.INVALID_PATH: 404,
    errors.INVALID_VERSION: 404,
    errors.INVALID_METHOD: 405,
    errors.INTERNAL_ERROR: 500,
}


@dataclass
class SandboxResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    fault: str | None = None  # the injected fault that shaped this answer, if any
    delay: float = field(default=0.0, repr=False)  # seconds to hold the answer back ("timeout" fault)

    def json(self) -> dict:
        return json.loads(self.body)


class ApiFailure(Exception):
    """Raised anywhere while answering; becomes an error envelope."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def http_status_for(code: int) -> int:
    return _HTTP_STATUS.get(code, 200)


def new_request_id(now: int) -> str:
    """Like TikTok's: UTC yyyymmddHHMMSS then 20 upper-case hex digits."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def respond(code: int, message: str, request_id: str, data_json: bytes = b"{}",
            headers: dict[str, str] | None = None, status: int | None = None) -> SandboxResponse:
    """An envelope around already-encoded `data` (pages splice cached return JSON in as bytes)."""
    head = json.dumps({"code": code, "message": message, "request_id": request_id}, separators=(",", ":"))
    body = head[:-1].encode() + b',"data":' + data_json + b"}"
    all_headers = {"Content-Type": "application/json", "X-Tt-Logid": request_id, **(headers or {})}
    return SandboxResponse(status or http_status_for(code), all_headers, body)


def encode(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
