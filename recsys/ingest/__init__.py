"""Validated, streaming ingest of catalog, customer and transaction files into the store."""

from recsys.ingest.errors import IngestError
from recsys.ingest.loader import IngestSummary, ingest_file
from recsys.ingest.mapping import ColumnMap, parse_map

__all__ = ["ColumnMap", "IngestError", "IngestSummary", "ingest_file", "parse_map"]
