"""The platform's limits: the one home of every bound a client can meet
(docs/API.md, "Limits"). The services, the stream job, the query side and the
load tool's oracle import them from here.
"""

from __future__ import annotations

# The newest tags kept per cookie and action, and the most a profile query
# returns (its `limit` defaults to this). The stream job trims in steps, so
# it may store a few more rows for a while; a query never returns more.
PROFILE_CAP = 200

# A tag's price is a signed 32-bit integer.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# Generous but bounded: a cookie is a path segment of the profile URL and a
# Cassandra partition key (at most 64 KiB); other strings are column values.
MAX_COOKIE_CHARS = 1024
MAX_FIELD_CHARS = 4096

# POST /user_tags bodies above this get 413 (INGEST_MAX_BODY_BYTES overrides it).
DEFAULT_MAX_BODY_BYTES = 64 * 1024

# An aggregate query spans at most a day of buckets.
MAX_AGGREGATE_RANGE_MS = 24 * 3600 * 1000
# GET /dimensions reads every value seen in each bucket of its range: an hour at most.
MAX_DIMENSIONS_RANGE_MS = 3600 * 1000
# SPEC: data of the last 24 h of event time is kept (behind the newest tag time).
RETAINED_EVENT_TIME_MS = 24 * 3600 * 1000

# The expected-answer body of a POST profile or aggregate query (a debugging aid).
MAX_EXPECTED_BODY_BYTES = 1024 * 1024
