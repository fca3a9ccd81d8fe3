"""`python -m query_api`: serve the query API (common/server.py)."""

from common.server import serve
from query_api.config import QuerySettings

if __name__ == "__main__":
    serve("query_api.app:create_app", QuerySettings())
