"""Code shared by the ingest API, the query API and the local stack tooling:
the user-tag schema, RFC 9457 problem documents and the settings mixins."""
