"""The Analytics API's sales figures (202509), as TikTok's OpenAPI files describe them.

GET /analytics/202509/shop_skus/performance: one row per SKU over [start_date_ge, end_date_lt),
paged (page_size at most 100), sorted by gmv, sku_orders or units_sold. No daily split: a client
wanting days asks one day at a time.
GET /analytics/202509/shop_products/{product_id}/performance: one product, in one interval
(granularity ALL) or one per day (1D).

Dates are the shop's calendar days; only days up to `latest_available_date` (yesterday, shop time)
have figures. IDs are JSON integers (int64), as the OAS declares them; money is a decimal string.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date, timedelta
from decimal import Decimal

from .. import errors
from .catalogue import Shop, Sku
from .envelope import ApiFailure, encode
from .sales import DaySales, Sales

SKU_PAGE_SIZE_MAX = 100
SKU_PAGE_SIZE_DEFAULT = 10
SKU_SORT_FIELDS = ("gmv", "sku_orders", "units_sold")
SORT_ORDERS = ("DESC", "ASC")
CURRENCIES = ("LOCAL", "USD")
GRANULARITIES = ("ALL", "1D")


def sku_performance(sales: Sales, shop: Shop, params: dict[str, str], now: int) -> bytes:
    """GetShopSKUPerformanceList."""
    start, end = _date_range(params)
    page_size = _page_size(params.get("page_size"))
    page = _page_number(params.get("page_token", ""))
    sort_field = _choice(params, "sort_field", SKU_SORT_FIELDS)
    descending = _choice(params, "sort_order", SORT_ORDERS) == "DESC"
    usd = _choice(params, "currency", CURRENCIES) == "USD"
    latest = sales.latest_available_date(shop, now)
    days = _days(start, min(end, latest + timedelta(days=1)))
    rows = []
    if days:
        for sku in shop.skus:
            total = _sum(sales.reported(shop, sku, day, latest) for day in days)
            gmv = _gmv(shop, sku, total, usd)
            rows.append(({"gmv": gmv[0], "sku_orders": total.orders, "units_sold": total.units}[sort_field],
                         int(sku.sku_id), sku, total, gmv))
    rows.sort(key=lambda row: (row[0], -row[1] if descending else row[1]), reverse=descending)
    chunk = rows[page * page_size:(page + 1) * page_size]
    more = (page + 1) * page_size < len(rows)
    data: dict = {
        "latest_available_date": latest.isoformat(),
        "total_count": len(rows),
        "skus": [{"id": int(sku.sku_id), "product_id": int(sku.product_id), "sku_orders": total.orders,
                  "units_sold": total.units, "gmv": {"amount": _amount(gmv[0]), "currency": gmv[1]}}
                 for _, _, sku, total, gmv in chunk],
        "next_page_token": _page_token(page + 1) if more else "",
    }
    return encode(data)


def product_performance(sales: Sales, shop: Shop, product_id: str, params: dict[str, str], now: int) -> bytes:
    """GetShopProductPerformanceDetail: items sold, orders and GMV, per day (1D) or for the whole range."""
    skus = [sku for sku in shop.skus if sku.product_id == product_id]
    if not skus:
        raise ApiFailure(errors.INVALID_PARAMETER, f"Product {product_id} does not exist in this shop.")
    start, end = _date_range(params)
    daily = _choice(params, "granularity", GRANULARITIES) == "1D"
    usd = _choice(params, "currency", CURRENCIES) == "USD"
    latest = sales.latest_available_date(shop, now)
    days = _days(start, min(end, latest + timedelta(days=1)))
    spans = [[day] for day in days] if daily else ([days] if days else [])
    intervals = []
    for span in spans:
        orders = units = 0
        amount = Decimal(0)
        currency = ""
        for sku in skus:
            total = _sum(sales.reported(shop, sku, day, latest) for day in span)
            orders, units = orders + total.orders, units + total.units
            part, currency = _gmv(shop, sku, total, usd)
            amount += part
        intervals.append({"start_date": span[0].isoformat(), "end_date": (span[-1] + timedelta(days=1)).isoformat(),
                          "sales": {"items_sold": units, "orders": orders,
                                    "gmv": {"amount": _amount(amount), "currency": currency}}})
    return encode({"latest_available_date": latest.isoformat(), "performance": {"intervals": intervals}})


def _gmv(shop: Shop, sku: Sku, total: DaySales, usd: bool) -> tuple[Decimal, str]:
    amount = total.gmv(sku)
    if usd:
        return (amount / shop.local.fx).quantize(Decimal("0.01")), "USD"
    return amount, shop.currency


def _amount(value: Decimal) -> str:
    """TikTok's money string of an amount with cents at most ("12.5", "10", "0"), like cases.fmt."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _sum(figures) -> DaySales:
    orders = units = 0
    for each in figures:
        if each is not None:
            orders, units = orders + each.orders, units + each.units
    return DaySales(orders, units)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range(max(0, (end - start).days))]


def _date_range(params: dict[str, str]) -> tuple[date, date]:
    start, end = _date(params, "start_date_ge"), _date(params, "end_date_lt")
    if end <= start:
        raise ApiFailure(errors.INVALID_PARAMETER, "end_date_lt must be after start_date_ge.")
    return start, end


def _date(params: dict[str, str], name: str) -> date:
    raw = params.get(name)
    if not raw:
        raise ApiFailure(errors.INVALID_PARAMETER, f"Missing required parameter {name} (YYYY-MM-DD).")
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiFailure(errors.INVALID_PARAMETER, f"Invalid {name} {raw!r}: use YYYY-MM-DD.") from None


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = params.get(name) or allowed[0]  # the first is the default
    if value not in allowed:
        raise ApiFailure(errors.INVALID_PARAMETER, f"Invalid {name} {value!r}; possible values: {', '.join(allowed)}.")
    return value


def _page_size(raw: str | None) -> int:
    if raw is None:
        return SKU_PAGE_SIZE_DEFAULT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= SKU_PAGE_SIZE_MAX:
        raise ApiFailure(errors.INVALID_PARAMETER, f"page_size must be 1 to {SKU_PAGE_SIZE_MAX}.")
    return int(raw)


def _page_token(page: int) -> str:
    return base64.b64encode(f"page_number={page}".encode()).decode()


def _page_number(token: str) -> int:
    """0 for the first page; the page a token names (base64 "page_number=N", as TikTok's example)."""
    if not token:
        return 0
    try:
        text = base64.b64decode(token, validate=True).decode()
        name, _, number = text.partition("=")
        if name != "page_number" or not number.isdigit() or int(number) < 1:
            raise ValueError(text)
        return int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiFailure(errors.INVALID_PARAMETER, "page_token is invalid: pass next_page_token from the "
                                                   "previous page.") from None
