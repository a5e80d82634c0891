"""Streaming readers: CSV (plain or gzip) and Parquet, in batches of string columns.

Every column is read as text so that validation, not the reader's type
inference, decides what a malformed value is (and can say which line it is on).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys.ingest.errors import IngestError


@dataclass(frozen=True, slots=True)
class Batch:
    """A chunk of rows. `first_line` is the 1-based file line of its first row (header = line 1)."""

    frame: pl.DataFrame
    first_line: int


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def read_header(path: Path) -> list[str]:
    """Column names of a CSV/Parquet file; raises IngestError when it cannot be read."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if _is_parquet(path):
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as exc:
            raise IngestError(f"{path}: not a readable Parquet file ({exc})") from exc
    try:
        with pa.input_stream(str(path), compression="detect") as raw:
            first = io.TextIOWrapper(raw, encoding="utf-8", newline="").readline()
    except Exception as exc:
        raise IngestError(f"{path}: cannot read the header line ({exc})") from exc
    header = next(csv.reader([first]), [])
    header = [name.strip().lstrip("\ufeff") for name in header]
    if not header or not any(header):
        raise IngestError(f"{path}: the file is empty or has no header line")
    if len(set(header)) != len(header):
        raise IngestError(f"{path}: the header repeats a column name: {header}")
    return header


def iter_batches(path: Path, chunk_rows: int) -> Iterator[Batch]:
    """Yield batches of about `chunk_rows` rows, never the whole file at once."""
    header = read_header(path)
    if _is_parquet(path):
        yield from _iter_parquet(path, chunk_rows)
        return
    # pyarrow's block size is in bytes; ~120 bytes a line is a fair guess for exports.
    read_options = pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 120), use_threads=True)
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse_options = pacsv.ParseOptions(newlines_in_values=False)
    line = 2
    try:
        stream = pacsv.open_csv(
            pa.input_stream(str(path), compression="detect"),
            read_options=read_options,
            convert_options=convert_options,
            parse_options=parse_options,
        )
        for record_batch in stream:
            if record_batch.num_rows == 0:
                continue
            frame = pl.from_arrow(pa.Table.from_batches([record_batch]))
            assert isinstance(frame, pl.DataFrame)
            yield Batch(frame, line)
            line += record_batch.num_rows
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, EOFError) as exc:
        raise IngestError(f"{path}: cannot be parsed near line {line} ({exc})") from exc


def _iter_parquet(path: Path, chunk_rows: int) -> Iterator[Batch]:
    row = 1
    try:
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            frame = pl.from_arrow(pa.Table.from_batches([record_batch]))
            assert isinstance(frame, pl.DataFrame)
            frame = frame.select(pl.col(name).cast(pl.Utf8) for name in frame.columns)
            yield Batch(frame, row)
            row += record_batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: cannot be parsed near row {row} ({exc})") from exc
