"""The collector: ingest over HTTP, normalisation, the ClickHouse store and its read API."""
