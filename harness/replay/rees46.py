"""Real shopper events as user tags: the REES46 "eCommerce behavior data from
multi category store" CSV (Kaggle; REES46 Marketing Platform).

Columns: event_time, event_type, product_id, category_id, category_code,
brand, price, user_id, user_session. The mapping (docs/REPLAY.md):

| tag field                 | from                                                          |
| ---                       | ---                                                           |
| time                      | event_time (second precision) -> `...T..:..:...000Z`, shifted by `offset_ms` |
| action                    | event_type view -> VIEW, purchase -> BUY; other types counted and skipped |
| cookie                    | user_id (as a string)                                         |
| product_info.product_id   | product_id (a JSON integer)                                   |
| product_info.brand_id     | brand, or "(no brand)" when empty                             |
| product_info.category_id  | category_code, or "(no category)" when empty                  |
| product_info.price        | price in integer cents (35.79 -> 3579), exact decimal arithmetic |
| country                   | derived: "C" + 2 digits of BLAKE2b(user_id) mod 100 (a shopper has one country) |
| device                    | derived: PC/MOBILE/TV by BLAKE2b(user_session) mod 3 (a session has one device) |
| origin                    | derived: "rees46-" + BLAKE2b(user_session) mod 1000 (a session has one entry site) |

Rows keep the file's order, which must be non-decreasing in time (the head
file is); the loader checks it.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from harness.replay.workload import DEVICES, format_tag_time, record_to_bytes, record_to_tag

NO_BRAND = "(no brand)"
NO_CATEGORY = "(no category)"
ACTIONS = {"view": "VIEW", "purchase": "BUY"}
COLUMNS = ("event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price", "user_id",
           "user_session")


class Rees46Error(ValueError):
    pass


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def parse_event_time(text: str) -> int:
    """`2019-10-01 00:00:00 UTC` -> epoch milliseconds."""
    if not text.endswith(" UTC"):
        raise Rees46Error(f"event_time {text!r} is not '... UTC'")
    moment = datetime.strptime(text[:-4], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000


def price_cents(text: str) -> int:
    try:
        cents = Decimal(text) * 100
    except InvalidOperation:
        raise Rees46Error(f"price {text!r} is not a decimal") from None
    if cents != cents.to_integral_value():
        raise Rees46Error(f"price {text!r} has more than two decimals")
    value = int(cents)
    if not -(2**31) <= value < 2**31:
        raise Rees46Error(f"price {text!r} does not fit an int32 in cents")
    return value


def map_row(row: dict, offset_ms: int = 0) -> tuple | None:
    """One CSV row as a record tuple (harness.replay.workload.RECORD_FIELDS), or None for
    an event type that is not a view or a purchase."""
    action = ACTIONS.get(row["event_type"])
    if action is None:
        return None
    user, session = row["user_id"], row["user_session"]
    session_hash = _hash("session/" + session)
    product = row["product_id"]
    return (
        parse_event_time(row["event_time"]) + offset_ms,
        user,
        f"C{_hash('user/' + user) % 100:02d}",
        DEVICES[session_hash % 3],
        action,
        f"rees46-{(session_hash // 3) % 1000}",
        int(product) if product.isdigit() else product,
        row["brand"] or NO_BRAND,
        row["category_code"] or NO_CATEGORY,
        price_cents(row["price"]),
    )


class Rees46Source:
    """The mapped rows of one CSV file, in file order, random access by index.

    `rebase_to_ms`: shift every time so that the first mapped event is at this
    instant (e.g. now); None keeps the file's times.
    """

    may_tie = True  # one second holds many events, a few of one user

    def __init__(self, path: str | Path, rebase_to_ms: int | None = None, limit: int | None = None):
        self.path = Path(path)
        self.skipped: Counter[str] = Counter()
        self.mapped: Counter[str] = Counter()
        rows = self._read()
        first = next((parse_event_time(r["event_time"]) for r in rows if r["event_type"] in ACTIONS), 0)
        self.offset_ms = 0 if rebase_to_ms is None else rebase_to_ms - first
        self.records: list[tuple] = []
        previous = None
        for row in rows:
            record = map_row(row, self.offset_ms)
            if record is None:
                self.skipped[row["event_type"]] += 1
                continue
            if previous is not None and record[0] < previous:
                raise Rees46Error(f"{self.path}: rows are not in time order at {row['event_time']}")
            previous = record[0]
            self.mapped[row["event_type"]] += 1
            self.records.append(record)
            if limit is not None and len(self.records) >= limit:
                break
        self.rows = len(rows)

    def _read(self) -> list[dict]:
        with self.path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise Rees46Error(f"{self.path}: missing column(s) {', '.join(missing)}")
            return list(reader)

    @property
    def total(self) -> int:
        return len(self.records)

    def time_ms(self, i: int) -> int:
        return self.records[i][0]

    def record(self, i: int) -> tuple:
        return self.records[i]

    def tag(self, i: int) -> dict:
        return record_to_tag(self.records[i])

    def tag_bytes(self, i: int) -> bytes:
        return record_to_bytes(self.records[i])

    def describe(self) -> dict:
        return {
            "kind": "rees46", "file": str(self.path), "rows": self.rows, "tags": len(self.records),
            "mapped": dict(self.mapped), "skipped": dict(self.skipped), "offset_ms": self.offset_ms,
            "first": format_tag_time(self.records[0][0]) if self.records else None,
            "last": format_tag_time(self.records[-1][0]) if self.records else None,
            "placeholders": {"brand": NO_BRAND, "category_code": NO_CATEGORY},
        }
