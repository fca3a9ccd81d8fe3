"""`python -m ingest_api`: serve the ingest API (common/server.py)."""

from common.server import serve
from ingest_api.config import IngestSettings

if __name__ == "__main__":
    serve("ingest_api.app:create_app", IngestSettings())
