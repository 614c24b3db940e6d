"""Request signing reproduces the known-answer vectors of docs/tiktok_api.md section 2.3."""

import hashlib
import hmac

from returns_core.tiktok.signing import sign, string_to_sign, verify

SECRET = "e59af819cc"
CIPHER = "GCP_XF90igAAAABh00qsWgtvOiGFNqyubMt3"


def test_vector_a_official_get_shops():
    query = {"app_key": "29a39d", "timestamp": "1623812664"}
    assert string_to_sign("/authorization/202309/shops", query, None, SECRET) == (
        b"e59af819cc/authorization/202309/shopsapp_key29a39dtimestamp1623812664e59af819cc")
    assert sign("/authorization/202309/shops", query, None, SECRET) == (
        "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8")


def test_vector_b_search_body_is_signed_and_sign_and_access_token_are_ignored():
    query = {"app_key": "29a39d", "page_size": "20", "shop_cipher": CIPHER,
             "sort_field": "update_time", "sort_order": "DESC", "timestamp": "1623812664",
             "access_token": "TTP_whatever", "sign": "stale"}
    body = b'{"return_status":["RETURN_OR_REFUND_REQUEST_PENDING"],"update_time_ge":1623000000}'
    assert sign("/return_refund/202309/returns/search", query, body, SECRET) == (
        "f986a09b129fab847a2f5c9c71a369d1fa6734774902817b3503a854a1606030")


def test_vector_c_get_records():
    query = {"app_key": "29a39d", "locale": "en-US", "shop_cipher": CIPHER, "timestamp": "1623812664"}
    assert sign("/return_refund/202309/returns/4035318504086604100/records", query, None, SECRET) == (
        "a4c6bda61438ac7bc5e762937e95222cbb57b115a2bda54af55c3d9816ddef4b")


def test_vector_d_php_sdk():
    assert sign("/test-api", {"foo": "bar"}, None, "app_secret") == (
        "d3cb7fe11ecae942802ceeca67e7cf10120cc12f1517d45fbc1c8cfe5413c80f")


def test_query_order_does_not_matter():
    a = {"timestamp": "1623812664", "app_key": "29a39d"}
    b = {"app_key": "29a39d", "timestamp": "1623812664"}
    assert sign("/x", a, None, SECRET) == sign("/x", b, None, SECRET)


def test_page_token_with_plus_slash_equals_is_signed_raw_not_url_encoded():
    token = "aDU2+dHIz/MlFh=="
    query = {"app_key": "29a39d", "page_token": token, "timestamp": "1623812664"}
    expected_msg = f"{SECRET}/pathapp_key29a39dpage_token{token}timestamp1623812664{SECRET}".encode()
    assert string_to_sign("/path", query, None, SECRET) == expected_msg
    expected = hmac.new(SECRET.encode(), expected_msg, hashlib.sha256).hexdigest()
    assert sign("/path", query, None, SECRET) == expected


def test_multipart_body_is_not_signed():
    query = {"app_key": "29a39d", "timestamp": "1623812664"}
    path = "/return_refund/202405/returns/shipping_documents"
    without_body = sign(path, query, None, SECRET)
    multipart = "multipart/form-data; boundary=xyz"
    assert sign(path, query, b"--xyz\r\nbinary...", SECRET, multipart) == without_body
    assert sign(path, query, b"{}", SECRET) != without_body


def test_sign_is_lowercase_hex_64_and_verify_accepts_only_it():
    query = {"app_key": "29a39d", "timestamp": "1623812664"}
    value = sign("/x", query, b"{}", SECRET)
    assert len(value) == 64 and value == value.lower()
    assert verify("/x", query, b"{}", SECRET, value)
    assert not verify("/x", query, b"{ }", SECRET, value)
    assert not verify("/x", query, b"{}", SECRET, "")
