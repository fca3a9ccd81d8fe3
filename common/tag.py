"""The user tag: its validation, and the record written to Kafka.

A tag is accepted exactly as SPEC section "The user tag" describes, and is
echoed back byte-for-byte in meaning: the original `time` string is kept
verbatim and `product_id` keeps its JSON type (integer or string). Unknown
fields are dropped here, so they are never stored.

The Kafka record value is a flat JSON envelope: the typed columns the stream
job needs (event time in epoch milliseconds, action, origin, brand, category,
price, cookie) plus `tag`, the canonical JSON text of the accepted tag that the
query side returns unchanged. The record key is the cookie (UTF-8), so all tags
of one cookie land in one partition, in order.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Generous, but bounded: a cookie is a path segment of the profile URL and a
# Cassandra partition key.
MAX_COOKIE_CHARS = 1024
MAX_FIELD_CHARS = 4096

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# ASCII digits only: `\d` would also match e.g. fullwidth or Arabic-Indic
# digits, which int() accepts, so such a time would be accepted and echoed.
_TAG_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)


class TagTimeError(ValueError):
    """The `time` field is not an RFC 3339 UTC timestamp."""


def parse_tag_time_ms(text: str) -> int:
    """Epoch milliseconds of a tag time such as `2022-03-22T12:15:00.000Z`.

    Accepts RFC 3339 with `Z` or a numeric offset and 0-9 fraction digits;
    sub-millisecond digits are truncated (the contract is millisecond precision).
    """
    m = _TAG_TIME.fullmatch(text)
    if m is None:
        raise TagTimeError("expected an RFC 3339 UTC time like 2022-03-22T12:15:00.000Z")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zone = m.group(7) or "", m.group(8)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError as exc:
        raise TagTimeError(f"not a valid date and time: {exc}") from None
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise TagTimeError("invalid UTC offset")
        try:
            moment -= sign * timedelta(hours=hours, minutes=minutes)
        except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is in year 10000
            raise TagTimeError("the time in UTC is outside years 1 to 9999") from None
    millis = int((fraction + "000")[:3])
    return (moment - _EPOCH) // timedelta(seconds=1) * 1000 + millis


_Bounded = Annotated[StrictStr, Field(max_length=MAX_FIELD_CHARS)]


class ProductInfo(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    product_id: StrictInt | _Bounded
    brand_id: _Bounded
    category_id: _Bounded
    price: Annotated[StrictInt, Field(ge=INT32_MIN, le=INT32_MAX)]


class UserTag(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    time: Annotated[
        StrictStr,
        Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$",
              examples=["2022-03-22T12:15:00.000Z"]),
    ]
    cookie: Annotated[StrictStr, Field(min_length=1, max_length=MAX_COOKIE_CHARS)]
    country: _Bounded
    device: Literal["PC", "MOBILE", "TV"]
    action: Literal["VIEW", "BUY"]
    origin: _Bounded
    product_info: ProductInfo

    @field_validator("time")
    @classmethod
    def _time_parses(cls, value: str) -> str:
        parse_tag_time_ms(value)
        return value

    @property
    def time_ms(self) -> int:
        return parse_tag_time_ms(self.time)

    def canonical_json(self) -> bytes:
        """The accepted tag as JSON, fields in SPEC order, unknown fields gone."""
        p = self.product_info
        return orjson.dumps(
            {
                "time": self.time,
                "cookie": self.cookie,
                "country": self.country,
                "device": self.device,
                "action": self.action,
                "origin": self.origin,
                "product_info": {
                    "product_id": p.product_id,
                    "brand_id": p.brand_id,
                    "category_id": p.category_id,
                    "price": p.price,
                },
            }
        )

    def kafka_record(self) -> tuple[bytes, bytes]:
        """(key, value) of the Kafka record for this tag; see the module doc."""
        p = self.product_info
        value = orjson.dumps(
            {
                "time_ms": self.time_ms,
                "cookie": self.cookie,
                "action": self.action,
                "origin": self.origin,
                "brand_id": p.brand_id,
                "category_id": p.category_id,
                "price": p.price,
                "tag": self.canonical_json().decode(),
            }
        )
        return self.cookie.encode(), value


class TagRejected(ValueError):
    """A request body that is not an acceptable user tag.

    `errors` lists {"field": "product_info.price", "message": "..."} items so
    the problem document can name each offending field.
    """

    def __init__(self, detail: str, errors: list[dict[str, str]]):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


def parse_user_tag(body: bytes) -> UserTag:
    """Validate a request body as one user tag, or raise TagRejected."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TagRejected("The body is not valid JSON (UTF-8).", [{"field": "body", "message": str(exc)}]) from None
    if not isinstance(document, dict):
        raise TagRejected("The body must be a JSON object.", [{"field": "body", "message": "expected an object"}])
    try:
        return UserTag.model_validate(document)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(part) for part in err["loc"][:_field_depth(err["loc"])]) or "body",
             "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise TagRejected(f"Invalid user tag field(s): {fields}.", errors) from None


def _field_depth(loc: tuple) -> int:
    # Union members add a type tag to the location (e.g. product_id.int);
    # the client only needs the field path.
    for i, part in enumerate(loc):
        if part in ("int", "str", "constrained-int", "constrained-str"):
            return i
    return len(loc)


def user_tag_json_schema() -> dict:
    """JSON Schema of a user tag with nested models inlined (for OpenAPI)."""
    schema = UserTag.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)
