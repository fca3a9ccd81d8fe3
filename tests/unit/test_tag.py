"""Validation of user tags (SPEC "The user tag" and section 1's 400 rules)."""

import orjson
import pytest

from common.tag import RECORD_FIELDS, TagRejected, parse_user_tag
from common.timestamps import TagTimeError, parse_tag_time_ms


def tag(**overrides):
    body = {
        "time": "2022-03-22T12:15:00.000Z",
        "cookie": "cookie-1",
        "country": "PL",
        "device": "PC",
        "action": "VIEW",
        "origin": "shop.example",
        "product_info": {"product_id": 17, "brand_id": "Nike", "category_id": "shoes", "price": 1999},
    }
    product = overrides.pop("product_info", {})
    body.update(overrides)
    body["product_info"] = {**body["product_info"], **product}
    return body


def rejected_fields(body) -> list[str]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(TagRejected) as info:
        parse_user_tag(raw)
    return [e["field"] for e in info.value.errors]


@pytest.mark.parametrize(
    "text, expected_ms",
    [
        ("1970-01-01T00:00:00.000Z", 0),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2022-03-22T12:15:00.000Z", 1647951300000),
        ("2022-03-22T12:15:00Z", 1647951300000),
        ("2022-03-22T12:14:59.999999Z", 1647951299999),  # truncated, not rounded
        ("2022-03-22T13:15:00.000+01:00", 1647951300000),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_tag_time_parses_to_epoch_millis(text, expected_ms):
    assert parse_tag_time_ms(text) == expected_ms


@pytest.mark.parametrize(
    "text",
    ["", "2022-03-22", "2022-03-22T12:15:00.000", "2022-03-22 12:15:00.000Z", "2022-02-30T00:00:00Z",
     "2022-03-22T24:00:00Z", "2022-03-22T12:15:00.000+25:00", "yesterday", "2022-03-22T12:15:00.Z"],
)
def test_unparseable_times_are_rejected(text):
    with pytest.raises(TagTimeError):
        parse_tag_time_ms(text)


def test_valid_tag_is_echoed_canonically_without_unknown_fields():
    body = tag(extra="dropped", product_info={"product_id": "A-17", "colour": "red"})
    accepted = parse_user_tag(orjson.dumps(body))
    echoed = orjson.loads(accepted.canonical_json())
    assert echoed == {k: v for k, v in body.items() if k != "extra"} | {
        "product_info": {"product_id": "A-17", "brand_id": "Nike", "category_id": "shoes", "price": 1999}
    }
    assert list(echoed) == ["time", "cookie", "country", "device", "action", "origin", "product_info"]


@pytest.mark.parametrize("product_id", [0, 17, -5, 2**40, "17", "", "ąę/?&=#% "])
def test_product_id_keeps_its_json_type(product_id):
    accepted = parse_user_tag(orjson.dumps(tag(product_info={"product_id": product_id})))
    assert orjson.loads(accepted.canonical_json())["product_info"]["product_id"] == product_id
    assert type(orjson.loads(accepted.canonical_json())["product_info"]["product_id"]) is type(product_id)


def test_time_string_is_kept_verbatim():
    accepted = parse_user_tag(orjson.dumps(tag(time="2022-03-22T12:15:00Z")))
    assert orjson.loads(accepted.canonical_json())["time"] == "2022-03-22T12:15:00Z"


@pytest.mark.parametrize("price", [-(2**31), 0, 2**31 - 1])
def test_int32_price_bounds_accepted(price):
    assert parse_user_tag(orjson.dumps(tag(product_info={"price": price}))).product_info.price == price


def test_kafka_record_is_keyed_by_cookie_and_carries_typed_columns():
    accepted = parse_user_tag(orjson.dumps(tag(cookie="ćookie/ ?&")))
    key, value = accepted.kafka_record()
    record = orjson.loads(value)
    assert key == "ćookie/ ?&".encode()
    assert record["time_ms"] == 1647951300000
    assert (record["action"], record["origin"], record["brand_id"], record["category_id"], record["price"]) == (
        "VIEW", "shop.example", "Nike", "shoes", 1999)
    assert orjson.loads(record["tag"]) == orjson.loads(accepted.canonical_json())


@pytest.mark.parametrize(
    "body, field",
    [
        (tag(device="PHONE"), "device"),
        (tag(action="CLICK"), "action"),
        (tag(action="view"), "action"),
        (tag(time="2022-03-22T12:15:00.000"), "time"),
        (tag(time=1647951300000), "time"),
        (tag(cookie=""), "cookie"),
        (tag(cookie="x" * 1025), "cookie"),
        (tag(cookie=17), "cookie"),
        (tag(country=None), "country"),
        (tag(product_info={"price": 2**31}), "product_info.price"),
        (tag(product_info={"price": -(2**31) - 1}), "product_info.price"),
        (tag(product_info={"price": 19.99}), "product_info.price"),
        (tag(product_info={"price": "1999"}), "product_info.price"),
        (tag(product_info={"price": True}), "product_info.price"),
        (tag(product_info={"product_id": 1.5}), "product_info.product_id"),
        (tag(product_info={"product_id": True}), "product_info.product_id"),
        (tag(product_info={"product_id": None}), "product_info.product_id"),
        (tag(product_info={"brand_id": 5}), "product_info.brand_id"),
        (tag() | {"product_info": "x"}, "product_info"),
    ],
)
def test_invalid_field_is_named(body, field):
    assert field in rejected_fields(body)


def test_missing_fields_are_each_named():
    body = tag()
    del body["origin"]
    del body["product_info"]["category_id"]
    assert set(rejected_fields(body)) == {"origin", "product_info.category_id"}


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"null", b"[]", b'"tag"', b"\xff\xfe{}", b'{"cookie": "\\ud800"}', b"[" * 5000 + b"]" * 5000],
)
def test_malformed_bodies_are_rejected(raw):
    assert rejected_fields(raw) == ["body"]


def test_the_kafka_record_has_exactly_the_declared_fields_in_order():
    accepted = parse_user_tag(orjson.dumps(tag()))
    _, value = accepted.kafka_record()
    assert list(orjson.loads(value)) == [name for name, _ in RECORD_FIELDS]
