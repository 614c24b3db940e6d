"""TikTok's OpenAPI contract (spec/), closed so that a field it does not declare fails validation.

Shared by the tests that check what we build or serve is TikTok-shaped: the sandbox's answers
(test_sandbox_spec.py) and the sample factory's return objects (test_sample_data.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import yaml
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SERVER = "https://open-api.tiktokglobalshop.com"
SEARCH = "/return_refund/202309/returns/search"


def _spec_dir() -> Path | None:
    """$RETURNS_SPEC_DIR, else spec/ in the repo, else the shared/spec beside the repo."""
    root = Path(__file__).resolve().parents[1]
    candidates = [os.environ.get("RETURNS_SPEC_DIR"), root / "spec", root.parent / "shared" / "spec"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "tiktok_return_refund.openapi.yaml").exists():
            return Path(candidate)
    return None


SPEC_DIR = _spec_dir()
needs_spec = pytest.mark.skipif(SPEC_DIR is None, reason="TikTok OpenAPI spec files not found (set RETURNS_SPEC_DIR)")


def _closed(node: object) -> None:
    """Close every object schema that lists properties, so undeclared response fields fail validation."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _closed(value)
    elif isinstance(node, list):
        for value in node:
            _closed(value)


def closed_contract(name: str) -> OpenAPI:
    """The contract in spec/`name`, every object schema closed."""
    assert SPEC_DIR is not None
    spec = yaml.safe_load((SPEC_DIR / name).read_text())
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            _closed(operation.get("responses", {}))
    _closed(spec.get("components", {}).get("schemas", {}))
    return OpenAPI.from_dict(spec)


def conforms(api: OpenAPI, method: str, path: str, response: httpx.Response) -> dict:
    """Validate the body against the operation's 200 response schema; return it parsed."""
    api.validate_response(MockRequest(SERVER, method.lower(), path),
                          MockResponse(data=response.content, status_code=200, content_type="application/json"))
    return response.json()


ANALYTICS_SPEC = Path(__file__).resolve().parents[1] / "spec" / "analytics" / "analytics_202509_sales.json"


def analytics_contract() -> OpenAPI:
    """TikTok's Analytics OAS for units sold (spec/analytics/, from @tts-open-toolkit/cli), every object closed."""
    spec = yaml.safe_load(ANALYTICS_SPEC.read_text())  # JSON is YAML
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            _closed(operation.get("responses", {}))
    return OpenAPI.from_dict(spec)
