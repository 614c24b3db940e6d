"""The sandbox: a TikTok Shop Partner API simulator that is part of the product.

New users run Returns Desk against it before they have TikTok credentials, and the tests use it as
their TikTok. It serves the same API (paths, envelope, signing checks, tokens, paging, error codes,
faults) in-process through an httpx transport or over a real HTTP port, from a seeded world of
shops, SKUs and returns that move through their lifecycle as time passes.

    sandbox = Sandbox(seed=7, shops=2, returns=500)
    tokens = sandbox.issue_tokens()
    client = httpx.Client(transport=sandbox.transport(), base_url="https://sandbox")

While served (`sandbox.serve()`), or after `sandbox.start_background()`, its world also moves on its
own and it POSTs signed webhooks to the addresses shops subscribe with PUT /event/202309/webhooks.
"""

from .catalogue import (
    PLANTED_SHOP_INDEX,
    PLANTED_SIZE_REASON_CODE,
    PLANTED_SIZE_REASON_TEXT,
    PLANTED_SIZE_SHARE,
    PLANTED_SIZE_SKU,
    PLANTED_SPIKE_FACTOR,
    PLANTED_SPIKE_REASON_CODE,
    PLANTED_SPIKE_REASON_TEXT,
    PLANTED_SPIKE_SKU,
    PLANTED_SPIKE_START,
)
from .core import SANDBOX_APP_KEY, SANDBOX_APP_SECRET, Sandbox, SandboxStateError
from .envelope import SandboxResponse
from .faults import FAULT_KINDS
from .webhooks import WebhookSettings

__all__ = [
    "FAULT_KINDS",
    "PLANTED_SHOP_INDEX",
    "PLANTED_SIZE_REASON_CODE",
    "PLANTED_SIZE_REASON_TEXT",
    "PLANTED_SIZE_SHARE",
    "PLANTED_SIZE_SKU",
    "PLANTED_SPIKE_FACTOR",
    "PLANTED_SPIKE_REASON_CODE",
    "PLANTED_SPIKE_REASON_TEXT",
    "PLANTED_SPIKE_SKU",
    "PLANTED_SPIKE_START",
    "SANDBOX_APP_KEY",
    "SANDBOX_APP_SECRET",
    "Sandbox",
    "SandboxResponse",
    "SandboxStateError",
    "WebhookSettings",
]
