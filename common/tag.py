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

from functools import cached_property
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, field_validator

from common.limits import INT32_MAX, INT32_MIN, MAX_COOKIE_CHARS, MAX_FIELD_CHARS
from common.timestamps import TAG_TIME_EXAMPLE, TAG_TIME_PATTERN, parse_tag_time_ms

# The Kafka record's fields, in order, with the SQL type the stream job reads
# each as (flink_jobs/sql.py builds its source table from this).
RECORD_FIELDS: tuple[tuple[str, str], ...] = (
    ("time_ms", "BIGINT"),
    ("cookie", "STRING"),
    ("action", "STRING"),
    ("origin", "STRING"),
    ("brand_id", "STRING"),
    ("category_id", "STRING"),
    ("price", "INT"),
    ("tag", "STRING"),
)

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
        Field(pattern=f"^{TAG_TIME_PATTERN}$", examples=[TAG_TIME_EXAMPLE]),
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

    # Cached: the Kafka record and the ingest metrics both read it, and a parse costs ~10 us.
    @cached_property
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


def _field_depth(loc: tuple[int | str, ...]) -> int:
    # Union members add a type tag to the location (e.g. product_id.int);
    # the client only needs the field path.
    for i, part in enumerate(loc):
        if part in ("int", "str", "constrained-int", "constrained-str"):
            return i
    return len(loc)


def user_tag_json_schema() -> dict[str, Any]:
    """JSON Schema of a user tag with nested models inlined (for OpenAPI)."""
    schema = UserTag.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined
