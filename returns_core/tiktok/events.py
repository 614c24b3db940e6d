"""TikTok Shop webhook events (docs/tiktok_api.md section 7): topic names, type numbers, address rule.

A subscription names its topic by name (`event_type` in GET/PUT/DELETE /event/202309/webhooks);
the event TikTok then POSTs names it by number (`type` in the body). Shared by the client, the
sandbox (which sends events) and the app's receiver (which reads them), so all agree on both.

    {"type": 12, "tts_notification_id": "7327112393057371910", "shop_id": "7494049642642441621",
     "timestamp": 1644412885, "data": {...}}
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ORDER_STATUS_CHANGE = 1
SELLER_DEAUTHORIZATION = 6
UPCOMING_AUTHORIZATION_EXPIRATION = 7
CANCELLATION_STATUS_CHANGE = 11
RETURN_STATUS_CHANGE = 12

# Every topic Update Shop Webhook accepts (event.json of [OAS], 202309), with its `type` number from
# the per-topic pages of the Partner Center docs. REVERSE_STATUS_UPDATE (2) is the pre-202309 return event.
TOPICS: dict[str, int] = {
    "ORDER_STATUS_CHANGE": ORDER_STATUS_CHANGE,
    "REVERSE_STATUS_UPDATE": 2,
    "RECIPIENT_ADDRESS_UPDATE": 3,
    "PACKAGE_UPDATE": 4,
    "PRODUCT_STATUS_CHANGE": 5,
    "SELLER_DEAUTHORIZATION": SELLER_DEAUTHORIZATION,
    "UPCOMING_AUTHORIZATION_EXPIRATION": UPCOMING_AUTHORIZATION_EXPIRATION,
    "CANCELLATION_STATUS_CHANGE": CANCELLATION_STATUS_CHANGE,
    "RETURN_STATUS_CHANGE": RETURN_STATUS_CHANGE,
    "NEW_CONVERSATION": 13,
    "NEW_MESSAGE": 14,
    "PRODUCT_INFORMATION_CHANGE": 15,
    "PRODUCT_CREATION": 16,
    "PRODUCT_CATEGORY_CHANGE": 18,
    "NEW_MESSAGE_LISTENER": 33,
    "INVOICE_STATUS_CHANGE": 36,
    "PRODUCT_AUDIT_STATUS_CHANGE": 37,
}
TOPIC_OF_TYPE: dict[int, str] = {number: name for name, number in TOPICS.items()}

ADDRESS_MAX = 255  # characters, per Update Shop Webhook
# TikTok's webhook configuration guide: https with TLS 1.2+, a domain name (no IP address), no port.
PUBLIC_ADDRESS_RULE = ("TikTok Shop only delivers to a public HTTPS address: https://, a domain name "
                       "(not an IP address), no port, at most 255 characters")
# How long TikTok waits for the receiver's answer, and when it retries a failed push (then gives up).
ANSWER_WITHIN_SECONDS = 3.0
RETRY_DELAYS = (120.0, 1800.0, 3 * 3600.0, 12 * 3600.0)  # 2 min, 30 min, 3 h, 12 h after each failure


def topic_number(name: str) -> int | None:
    """The event `type` number of a topic name, or None for a name TikTok does not know."""
    return TOPICS.get(name)


def public_address_problem(address: object) -> str | None:
    """Why TikTok would refuse this webhook address, in words; None when it meets TikTok's rule."""
    if not isinstance(address, str) or not address.strip():
        return "The webhook address is required."
    if len(address) > ADDRESS_MAX:
        return f"The webhook address is {len(address)} characters long; at most {ADDRESS_MAX} are allowed."
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError:
        return f"The webhook address is not a valid URL. {PUBLIC_ADDRESS_RULE}."
    host = parts.hostname or ""
    if parts.scheme != "https":
        return f"The webhook address must start with https://. {PUBLIC_ADDRESS_RULE}."
    if not host:
        return f"The webhook address has no host name. {PUBLIC_ADDRESS_RULE}."
    if _is_ip(host):
        return f"The webhook address must use a domain name, not an IP address. {PUBLIC_ADDRESS_RULE}."
    if port is not None:
        return f"The webhook address cannot have a port. {PUBLIC_ADDRESS_RULE}."
    if "." not in host or host == "localhost" or host.endswith(".localhost"):
        return f"The webhook address must be a public domain name. {PUBLIC_ADDRESS_RULE}."
    return None


def is_loopback_address(address: str) -> bool:
    """True for http(s) URLs on this machine (127.0.0.0/8, ::1, localhost), whatever the port."""
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return False
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
