"""The hand corpus of bad requests (issue 5, "Bad input"): every one gets a 4xx
problem document from the real API process, none a 500, and none changes what
is stored: the Kafka topic's end offsets (ingest) and every row of every
Cassandra table (query) are compared before and after each request.

SPEC, "Failure rules": "Every bad request gets a 4xx with a problem document,
never a 500, and never changes stored data." Decisions where the SPEC is
silent are in docs/DESIGN.md ("Bad input").
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from common.limits import DEFAULT_MAX_BODY_BYTES, PROFILE_CAP
from tests.integration.api_env import PROBLEM, VALID_TAG, assert_problem

pytestmark = pytest.mark.integration

LIMIT = DEFAULT_MAX_BODY_BYTES
TR = "2022-03-22T12:00:00_2022-03-22T12:10:00"


def tag(**changes) -> dict:
    return {**VALID_TAG, **changes}


def product(**changes) -> dict:
    return tag(product_info={**VALID_TAG["product_info"], **changes})


def without(name: str) -> dict:
    return {k: v for k, v in VALID_TAG.items() if k != name}


def without_product(name: str) -> dict:
    return tag(product_info={k: v for k, v in VALID_TAG["product_info"].items() if k != name})


def raw(document: dict) -> bytes:
    return orjson.dumps(document)


VALID_BYTES = raw(VALID_TAG)

# (id, body, field the problem must name or None for a 413)
INGEST_CORPUS = [
    # malformed and truncated JSON
    ("empty", b"", "body"),
    ("whitespace", b"  \n", "body"),
    ("truncated", VALID_BYTES[:40], "body"),
    ("truncated-last-byte", VALID_BYTES[:-1], "body"),
    ("single-quotes", b"{'time': 1}", "body"),
    ("trailing-garbage", VALID_BYTES + b"x", "body"),
    ("two-documents", VALID_BYTES + VALID_BYTES, "body"),
    ("trailing-comma", VALID_BYTES[:-1] + b",}", "body"),
    ("nan", VALID_BYTES.replace(b"1999", b"NaN"), "body"),
    ("bom", b"\xef\xbb\xbf" + VALID_BYTES, "body"),
    # invalid UTF-8 and unpaired surrogates
    ("invalid-utf8-byte", VALID_BYTES.replace(b"cookie-1", b"cookie-\xff"), "body"),
    ("overlong-utf8", VALID_BYTES.replace(b"cookie-1", b"cookie-\xc0\xaf"), "body"),
    ("truncated-utf8", VALID_BYTES.replace(b"cookie-1", b"cookie-\xc4"), "body"),
    ("lone-surrogate", VALID_BYTES.replace(b"cookie-1", b"cookie-\\ud800"), "body"),
    ("latin1-body", raw(tag(origin="sklep-ó")).replace("ó".encode(), b"\xf3"), "body"),
    # deep nesting (orjson's limit is 1024 levels), also inside an ignored field
    ("deep-array", b"[" * 10_000, "body"),
    ("deep-unknown-field", VALID_BYTES[:-1] + b',"x":' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"}", "body"),
    # not an object
    ("array", b"[" + VALID_BYTES + b"]", "body"),
    ("string", b'"tag"', "body"),
    ("null", b"null", "body"),
    ("number", b"17", "body"),
    # wrong types (no coercion)
    ("time-number", raw(tag(time=1647951300000)), "time"),
    ("cookie-number", raw(tag(cookie=17)), "cookie"),
    ("cookie-null", raw(tag(cookie=None)), "cookie"),
    ("country-list", raw(tag(country=["PL"])), "country"),
    ("origin-object", raw(tag(origin={"a": 1})), "origin"),
    ("product-info-string", raw(tag(product_info="Nike")), "product_info"),
    ("product-info-list", raw(tag(product_info=[])), "product_info"),
    ("price-string", raw(product(price="1999")), "product_info.price"),
    ("price-float", raw(product(price=19.99)), "product_info.price"),
    ("price-whole-float", raw(product(price=1999.0)), "product_info.price"),
    ("price-bool", raw(product(price=True)), "product_info.price"),
    ("price-over-int32", raw(product(price=2**31)), "product_info.price"),
    ("price-under-int32", raw(product(price=-(2**31) - 1)), "product_info.price"),
    ("price-huge", VALID_BYTES.replace(b"1999", b"1" + b"0" * 400), "body"),
    ("product-id-float", raw(product(product_id=1.5)), "product_info.product_id"),
    ("product-id-bool", raw(product(product_id=False)), "product_info.product_id"),
    ("product-id-null", raw(product(product_id=None)), "product_info.product_id"),
    ("product-id-object", raw(product(product_id={"id": 1})), "product_info.product_id"),
    ("brand-number", raw(product(brand_id=5)), "product_info.brand_id"),
    ("category-null", raw(product(category_id=None)), "product_info.category_id"),
    # missing fields
    *((f"missing-{name}", raw(without(name)), name) for name in VALID_TAG),
    *((f"missing-product-{name}", raw(without_product(name)), f"product_info.{name}")
      for name in VALID_TAG["product_info"]),
    ("empty-object", b"{}", "time"),
    # unknown enum values (exact, case-sensitive)
    ("device-unknown", raw(tag(device="FRIDGE")), "device"),
    ("device-lowercase", raw(tag(device="pc")), "device"),
    ("device-empty", raw(tag(device="")), "device"),
    ("action-unknown", raw(tag(action="CLICK")), "action"),
    ("action-lowercase", raw(tag(action="buy")), "action"),
    ("action-padded", raw(tag(action=" BUY")), "action"),
    # impossible or malformed times
    ("feb-30", raw(tag(time="2022-02-30T12:00:00.000Z")), "time"),
    ("hour-25", raw(tag(time="2022-03-22T25:00:00.000Z")), "time"),
    ("minute-60", raw(tag(time="2022-03-22T12:60:00.000Z")), "time"),
    ("leap-second", raw(tag(time="2022-12-31T23:59:60.000Z")), "time"),
    ("month-13", raw(tag(time="2022-13-01T00:00:00.000Z")), "time"),
    ("year-0", raw(tag(time="0000-01-01T00:00:00.000Z")), "time"),
    ("no-zone", raw(tag(time="2022-03-22T12:15:00.000")), "time"),
    ("lowercase-z", raw(tag(time="2022-03-22T12:15:00.000z")), "time"),
    ("space-separator", raw(tag(time="2022-03-22 12:15:00.000Z")), "time"),
    ("date-only", raw(tag(time="2022-03-22")), "time"),
    ("epoch-string", raw(tag(time="1647951300000")), "time"),
    ("ten-fraction-digits", raw(tag(time="2022-03-22T12:15:00.0000000000Z")), "time"),
    ("offset-hour-24", raw(tag(time="2022-03-22T12:15:00.000+24:00")), "time"),
    ("fullwidth-digits", raw(tag(time="２０22-03-22T12:15:00.000Z")), "time"),
    ("arabic-indic-digit", raw(tag(time="2022-03-22T12:15:0٠.000Z")), "time"),
    ("offset-past-year-9999", raw(tag(time="9999-12-31T23:59:59.999-01:00")), "time"),
    ("offset-before-year-1", raw(tag(time="0001-01-01T00:00:00.000+01:00")), "time"),
    ("time-empty", raw(tag(time="")), "time"),
    # over-long and empty strings
    ("cookie-empty", raw(tag(cookie="")), "cookie"),
    ("cookie-1025-chars", raw(tag(cookie="c" * 1025)), "cookie"),
    ("origin-4097-chars", raw(tag(origin="o" * 4097)), "origin"),
    ("brand-4097-chars", raw(product(brand_id="b" * 4097)), "product_info.brand_id"),
    # bodies over the limit
    ("over-limit-by-one", raw(tag(padding="p" * LIMIT))[: LIMIT + 1], None),
    ("ten-mib", b"{" + b" " * (10 * 1024 * 1024) + b"}", None),
]


@pytest.mark.parametrize("body, field", [c[1:] for c in INGEST_CORPUS], ids=[c[0] for c in INGEST_CORPUS])
def test_bad_tag_gets_problem_and_writes_nothing(ingest_url, api_topic, body, field):
    before = api_topic.end_offsets()
    response = httpx.post(f"{ingest_url}/user_tags", content=body,
                          headers={"content-type": "application/json"}, timeout=30)
    if field is None:
        assert_problem(response, 413)
    else:
        problem = assert_problem(response, 400)
        assert field in [e["field"] for e in problem["errors"]], problem
        assert field in problem["detail"]
    assert api_topic.end_offsets() == before


def test_chunked_body_over_the_limit_gets_413_and_writes_nothing(ingest_url, api_topic):
    """No Content-Length: the limit is enforced while reading the chunks."""
    before = api_topic.end_offsets()
    chunks = [VALID_BYTES[:-1], b',"padding":"', *([b"p" * 8192] * 16), b'"}']
    response = httpx.post(f"{ingest_url}/user_tags", content=iter(chunks), timeout=30)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)
    assert api_topic.end_offsets() == before


def test_body_just_under_the_limit_is_accepted(ingest_url, api_topic):
    """The limit is the SPEC's 64 KiB, not less: padding in an unknown field."""
    body = raw(tag(cookie="under-limit", padding=""))
    body = body.replace(b'"padding":""', b'"padding":"' + b"p" * (LIMIT - len(body)) + b'"')
    assert len(body) == LIMIT
    before = api_topic.end_offsets()
    assert httpx.post(f"{ingest_url}/user_tags", content=body, timeout=30).status_code == 204
    assert sum(api_topic.end_offsets()) == sum(before) + 1


def test_malformed_http_gets_a_clean_400_from_the_server(ingest_url, api_topic):
    """A request that is not valid HTTP/1.1 never reaches the application:
    uvicorn answers 400 itself (text/plain, not a problem document; decided
    in docs/DESIGN.md) and closes the connection."""
    before = api_topic.end_offsets()
    host, port = urlsplit(ingest_url).hostname, urlsplit(ingest_url).port
    for request in (
        b"POST /user_tags HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n" + VALID_BYTES,
        b"POST /user_tags HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + VALID_BYTES,
        b"POST /user_tags HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"NONSENSE\r\n\r\n",
    ):
        answer = send_raw(host, port, request)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert api_topic.end_offsets() == before


def test_unknown_fields_are_ignored_and_never_stored(ingest_url, api_topic):
    """SPEC: "Unknown extra fields are ignored: not stored and not echoed." The
    record's `tag` is what the job stores and the query API returns verbatim."""
    sent = {**VALID_TAG, "cookie": "extras", "extra": {"nested": [1, 2]}, "Time": "x", "cookie ": "y",
            "product_info": {**VALID_TAG["product_info"], "colour": "red", "price_eur": 5}}
    before = sum(api_topic.end_offsets())
    response = httpx.post(f"{ingest_url}/user_tags", content=raw(sent), timeout=30)
    assert response.status_code == 204, response.text
    assert sum(api_topic.end_offsets()) == before + 1
    [record] = [r for r in api_topic.records() if r["cookie"] == "extras"]
    assert set(record) == {"time_ms", "cookie", "action", "origin", "brand_id", "category_id", "price", "tag"}
    assert orjson.loads(record["tag"]) == {**VALID_TAG, "cookie": "extras"}
    for name in ("extra", "nested", "Time", "cookie ", "colour", "price_eur"):
        assert f'"{name}"' not in record["tag"]


# -- query API ---------------------------------------------------------------------

SEEDED = [  # stored before the corpus runs, so "unchanged" compares real rows
    tag(cookie="seeded", time="2022-03-22T12:01:00.000Z"),
    tag(cookie="seeded", time="2022-03-22T12:02:30.000Z", action="VIEW"),
    tag(cookie="a/b c%ć", time="2022-03-22T12:03:00.000Z"),
]


@pytest.fixture(scope="module")
def seeded_query(api_keyspace, query_url):
    for offset, t in enumerate(SEEDED):
        api_keyspace.store_tag(t, offset=offset)
    return query_url


P = "/user_profiles/seeded"
A = "/aggregates"
AGG = [("time_range", TR), ("action", "BUY"), ("aggregates", "COUNT")]


def agg(*drop: str, **replace: str) -> list[tuple[str, str]]:
    return [(k, replace.get(k, v)) for k, v in AGG if k not in drop]


# (id, path, query params as (name, value) pairs or a raw query string, field the problem names)
QUERY_CORPUS = [
    # time ranges
    ("profile-no-time-range", P, [], "time_range"),
    ("profile-empty-time-range", P, [("time_range", "")], "time_range"),
    ("profile-garbage-range", P, [("time_range", "yesterday")], "time_range"),
    ("profile-one-end", P, [("time_range", "2022-03-22T12:00:00")], "time_range"),
    ("profile-reversed", P, [("time_range", "2022-03-22T12:10:00_2022-03-22T12:00:00")], "time_range"),
    ("profile-empty-range", P, [("time_range", "2022-03-22T12:00:00_2022-03-22T12:00:00")], "time_range"),
    ("profile-feb-30", P, [("time_range", "2022-02-30T00:00:00_2022-03-01T00:00:00")], "time_range"),
    ("profile-hour-25", P, [("time_range", "2022-03-22T25:00:00_2022-03-23T00:00:00")], "time_range"),
    ("profile-minute-60", P, [("time_range", "2022-03-22T12:60:00_2022-03-22T13:00:00")], "time_range"),
    ("profile-year-0", P, [("time_range", "0000-01-01T00:00:00_2022-03-01T00:00:00")], "time_range"),
    ("profile-z-suffix", P, [("time_range", "2022-03-22T12:00:00Z_2022-03-22T12:10:00Z")], "time_range"),
    ("profile-one-fraction-digit", P, [("time_range", "2022-03-22T12:00:00.5_2022-03-22T12:10:00")], "time_range"),
    ("profile-micros", P, [("time_range", "2022-03-22T12:00:00.000000_2022-03-22T12:10:00")], "time_range"),
    ("profile-space", P, [("time_range", "2022-03-22 12:00:00_2022-03-22 12:10:00")], "time_range"),
    ("profile-fullwidth", P, [("time_range", "２０22-03-22T12:00:00_2022-03-22T12:10:00")], "time_range"),
    ("profile-two-ranges", P, [("time_range", TR), ("time_range", TR)], "time_range"),
    # limit
    *((f"limit-{name}", P, [("time_range", TR), ("limit", value)], "limit") for name, value in (
        ("negative", "-1"), ("201", "201"), ("empty", ""), ("fraction", "1.5"), ("word", "ten"),
        ("plus", "+5"), ("space", " 5"), ("underscore", "1_0"), ("whole-float", "5.0"), ("hex", "0x10"),
        ("huge", "9" * 40), ("arabic-indic", "٥"))),
    ("limit-repeated", P, [("time_range", TR), ("limit", "1"), ("limit", "2")], "limit"),
    # cookies in the path
    ("cookie-missing", "/user_profiles/", [("time_range", TR)], "cookie"),
    ("cookie-1025-chars", "/user_profiles/" + "c" * 1025, [("time_range", TR)], "cookie"),
    ("cookie-1025-emoji", "/user_profiles/" + "%F0%9F%8D%AA" * 1025, [("time_range", TR)], "cookie"),
    ("cookie-invalid-utf8", "/user_profiles/%ff", [("time_range", TR)], "cookie"),
    ("cookie-truncated-utf8", "/user_profiles/abc%C4", [("time_range", TR)], "cookie"),
    ("cookie-encoded-surrogate", "/user_profiles/%ED%A0%80", [("time_range", TR)], "cookie"),
    # aggregates parameters
    ("agg-no-action", A, agg("action"), "action"),
    ("agg-no-aggregates", A, agg("aggregates"), "aggregates"),
    ("agg-no-time-range", A, agg("time_range"), "time_range"),
    ("agg-action-unknown", A, agg(action="CLICK"), "action"),
    ("agg-action-lowercase", A, agg(action="buy"), "action"),
    ("agg-aggregate-unknown", A, agg(aggregates="MAX"), "aggregates"),
    ("agg-aggregate-empty", A, agg(aggregates=""), "aggregates"),
    ("agg-aggregate-twice", A, [*AGG, ("aggregates", "COUNT")], "aggregates"),
    ("agg-two-time-ranges", A, [*AGG, ("time_range", TR)], "time_range"),
    ("agg-two-actions", A, [*AGG, ("action", "VIEW")], "action"),
    ("agg-two-origins", A, [*AGG, ("origin", "a"), ("origin", "b")], "origin"),
    ("agg-two-brands", A, [*AGG, ("brand_id", "a"), ("brand_id", "a")], "brand_id"),
    ("agg-two-categories", A, [*AGG, ("category_id", "a"), ("category_id", "b")], "category_id"),
    ("agg-unaligned-start", A, agg(time_range="2022-03-22T12:00:30_2022-03-22T12:10:00"), "time_range"),
    ("agg-unaligned-end-ms", A, agg(time_range="2022-03-22T12:00:00.000_2022-03-22T12:10:00.001"), "time_range"),
    ("agg-reversed", A, agg(time_range="2022-03-22T12:10:00_2022-03-22T12:00:00"), "time_range"),
    ("agg-empty-range", A, agg(time_range="2022-03-22T12:00:00_2022-03-22T12:00:00"), "time_range"),
    ("agg-over-24h", A, agg(time_range="2022-03-22T12:00:00_2022-03-23T12:01:00"), "time_range"),
    ("agg-years", A, agg(time_range="0001-01-01T00:00:00_9999-12-31T23:59:00"), "time_range"),
    ("agg-feb-30", A, agg(time_range="2022-02-30T00:00:00_2022-03-01T00:00:00"), "time_range"),
    ("agg-origin-invalid-utf8", A, "&".join(["time_range=" + TR, "action=BUY", "aggregates=COUNT", "origin=%ff"]),
     "origin"),
    ("agg-brand-4097-chars", A, [*AGG, ("brand_id", "b" * 4097)], "brand_id"),
    ("agg-category-4097-emoji", A, [*AGG, ("category_id", "🍪" * 4097)], "category_id"),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path, params, field", [c[1:] for c in QUERY_CORPUS], ids=[c[0] for c in QUERY_CORPUS])
def test_bad_query_gets_problem_and_changes_nothing(seeded_query, api_keyspace, method, path, params, field):
    before = api_keyspace.snapshot()
    query = params if isinstance(params, str) else str(httpx.QueryParams(params))
    response = httpx.request(method, f"{seeded_query}{path}?{query}", timeout=30)
    problem = assert_problem(response, 400)
    assert field in [e["field"].split(".")[0] for e in problem["errors"]], problem
    assert api_keyspace.snapshot() == before


@pytest.mark.parametrize("encoded, cookie", [
    ("a%2Fb%20c%25%C4%87", "a/b c%ć"),  # the seeded cookie: its tag comes back
    ("%00", "\x00"),
    ("a%0Ab", "a\nb"),  # a newline was a 404 before query_api.params.CookieConvertor
    ("a%0A", "a\n"),
    ("%0D%0A%09", "\r\n\t"),
    ("%2F%2F", "//"),
    ("a+b", "a+b"),  # '+' is a plain character in a path
    ("%EF%BF%BD", "\ufffd"),  # a real replacement character is a valid cookie
    ("%F0%9F%8D%AA", "🍪"),
    ("c" * 1024, "c" * 1024),
])
def test_url_encoded_cookies_are_decoded_once(seeded_query, api_keyspace, encoded, cookie):
    before = api_keyspace.snapshot()
    response = httpx.get(f"{seeded_query}/user_profiles/{encoded}?time_range={TR}", timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["cookie"] == cookie
    expected = [orjson.loads(UserTag_json(t)) for t in SEEDED if t["cookie"] == cookie]
    assert answer["buys"] == expected and answer["views"] == []
    assert api_keyspace.snapshot() == before


def UserTag_json(t: dict) -> bytes:
    from common.tag import UserTag

    return UserTag.model_validate(t).canonical_json()


def test_unknown_paths_and_methods_get_problem_documents(seeded_query, ingest_url):
    for method, url in (("GET", f"{ingest_url}/user_tags"), ("DELETE", f"{ingest_url}/user_tags"),
                        ("GET", f"{ingest_url}/nope"), ("DELETE", f"{seeded_query}/aggregates"),
                        ("PUT", f"{seeded_query}{P}?time_range={TR}"),
                        # Starlette redirects to /user_profiles/ (307), which lacks the cookie: 400.
                        ("GET", f"{seeded_query}/user_profiles?time_range={TR}")):
        response = httpx.request(method, url, timeout=30, follow_redirects=True)
        assert response.status_code in (400, 404, 405), (method, url, response.status_code)
        assert response.headers["content-type"] == PROBLEM


def test_a_url_too_long_for_the_server_gets_a_clean_400(seeded_query, api_keyspace):
    """A cookie or filter whose encoded bytes could exceed Cassandra's 64 KiB
    key limit cannot even reach the application: the server's parser refuses
    URLs that long (somewhere between 30 and 120 KB) with its own 400."""
    before = api_keyspace.snapshot()
    host, port = urlsplit(seeded_query).hostname, urlsplit(seeded_query).port
    for target in (b"/user_profiles/" + b"%C4%87" * 35_000 + b"?time_range=" + TR.encode(),
                   b"/aggregates?time_range=" + TR.encode() + b"&action=BUY&aggregates=COUNT&origin="
                   + b"%C4%87" * 35_000):
        assert send_raw(host, port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 400 ")
    assert api_keyspace.snapshot() == before


def send_raw(host: str, port: int, request: bytes) -> bytes:
    """Send bytes as they are (no client-side checks) and read until the server closes."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_edge_values_that_are_valid_are_answered(seeded_query):
    """Not bad input: exactly 24 h, limit 0 and 200, ranges far in the past and future."""
    ok = [
        (A, agg(time_range="2022-03-22T00:00:00_2022-03-23T00:00:00")),
        (A, agg(time_range="0001-01-01T00:00:00_0001-01-01T00:05:00")),
        (A, agg(time_range="9999-12-31T23:50:00_9999-12-31T23:59:00")),
        (A, agg(time_range="1969-12-31T23:55:00.000_1970-01-01T00:05:00.000")),
        (P, [("time_range", TR), ("limit", "0")]),
        (P, [("time_range", TR), ("limit", str(PROFILE_CAP))]),
        (P, [("time_range", "0001-01-01T00:00:00_9999-12-31T23:59:59.999")]),
    ]
    for path, params in ok:
        response = httpx.get(f"{seeded_query}{path}", params=params, timeout=30)
        assert response.status_code == 200, (path, params, response.text[:300])
    day = httpx.get(f"{seeded_query}{A}", params=ok[0][1], timeout=30).json()
    assert len(day["rows"]) == 24 * 60
