"""Request signing reproduces the known-answer vectors of docs/tiktok_api.md section 2.3, and the
webhook signature the vector of section 7."""

import hashlib
import hmac
import json

from returns_core.tiktok.signing import sign, string_to_sign, verify, verify_webhook, webhook_signature

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


# --- webhooks (docs section 7) -------------------------------------------------------------------

WEBHOOK_BODY = (b'{"type":1,"tts_notification_id":"7380066284010030890","shop_id":"7495540735365777507",'
                b'"timestamp":1718305585,"data":{"is_on_hold_order":true,"order_id":"576653688135258178",'
                b'"order_status":"UNPAID","update_time":1718305585}}')
WEBHOOK_SIGNATURE = "5dec0f11ec2f6783b8deee53c9ffbf8d024302f7c7e7fa55a35d17629031ac05"


def test_webhook_vector_given_by_the_source():
    assert webhook_signature("abcdef", "123", WEBHOOK_BODY) == WEBHOOK_SIGNATURE


def test_webhook_signature_is_hmac_of_app_key_then_raw_body_keyed_with_the_secret():
    expected = hmac.new(b"123", b"abcdef" + WEBHOOK_BODY, hashlib.sha256).hexdigest()
    assert webhook_signature("abcdef", "123", WEBHOOK_BODY) == expected


def test_verify_webhook_accepts_the_known_answer():
    assert verify_webhook("abcdef", "123", WEBHOOK_BODY, WEBHOOK_SIGNATURE)
    assert verify_webhook("abcdef", "123", WEBHOOK_BODY, f" {WEBHOOK_SIGNATURE} ")  # header whitespace


def test_verify_webhook_refuses_any_other_body_key_secret_or_header():
    reserialized = json.dumps(json.loads(WEBHOOK_BODY)).encode()  # same JSON, other bytes
    assert not verify_webhook("abcdef", "123", reserialized, WEBHOOK_SIGNATURE)
    assert not verify_webhook("abcdef", "123", WEBHOOK_BODY + b" ", WEBHOOK_SIGNATURE)
    assert not verify_webhook("abcdeg", "123", WEBHOOK_BODY, WEBHOOK_SIGNATURE)
    assert not verify_webhook("abcdef", "124", WEBHOOK_BODY, WEBHOOK_SIGNATURE)
    assert not verify_webhook("abcdef", "123", WEBHOOK_BODY, WEBHOOK_SIGNATURE[:-1] + "6")
    assert not verify_webhook("abcdef", "123", WEBHOOK_BODY, WEBHOOK_SIGNATURE[:32])


def test_verify_webhook_refuses_a_missing_empty_or_odd_header_without_raising():
    for header in (None, "", "   ", "é" * 64, "\udcff"):
        assert not verify_webhook("abcdef", "123", WEBHOOK_BODY, header)
    assert not verify_webhook("abcdef", "", WEBHOOK_BODY, webhook_signature("abcdef", "", WEBHOOK_BODY))


def test_verify_webhook_compares_in_constant_time(monkeypatch):
    from returns_core.tiktok import signing

    seen = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    assert verify_webhook("abcdef", "123", WEBHOOK_BODY, WEBHOOK_SIGNATURE)
    assert seen == [(WEBHOOK_SIGNATURE.encode(), WEBHOOK_SIGNATURE.encode())]
