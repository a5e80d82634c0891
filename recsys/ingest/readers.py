"""Streaming readers: CSV (plain or gzip) and Parquet, in batches of string columns.

Every column is read as text so that validation, not the reader's type
inference, decides what a malformed value is (and can say which line it is on).
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from recsys.ingest.errors import IngestError


@dataclass(frozen=True, slots=True)
class Batch:
    """A chunk of rows. `first_line` is the 1-based file line of its first row (header = line 1).

    `lines`: each row's file line, when the rows are not consecutive lines (a row the
    reader rejected, or a blank line, lies between them). `rejects`: (line, reason) of
    the lines that are not a row (wrong number of fields, an unterminated quote).
    """

    frame: pl.DataFrame
    first_line: int
    lines: pl.Series | None = None
    rejects: tuple[tuple[int, str], ...] = ()

    @property
    def line_numbers(self) -> pl.Series:
        if self.lines is not None:
            return self.lines
        return pl.int_range(
            self.first_line, self.first_line + self.frame.height, dtype=pl.Int64, eager=True
        )


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
            # Only the header's own bytes are decoded: a bad byte further on is reported
            # with the line it is near, not as an unreadable header.
            head = b""
            while b"\n" not in head:
                chunk = raw.read(1 << 16)
                if not chunk:
                    break
                head += chunk
            first = head.split(b"\n", 1)[0].decode("utf-8")
    except Exception as exc:
        raise IngestError(f"{path}: cannot read the header line ({exc})") from exc
    header = next(csv.reader([first]), [])
    header = [name.strip().lstrip("\ufeff") for name in header]
    if not header or not any(header):
        raise IngestError(f"{path}: the file is empty or has no header line")
    if len(set(header)) != len(header):
        raise IngestError(f"{path}: the header repeats a column name: {header}")
    return header


def iter_batches(
    path: Path, chunk_rows: int, columns: Collection[str] | None = None
) -> Iterator[Batch]:
    """Yield batches of about `chunk_rows` rows, never the whole file at once.

    `columns` (default: all) limits the batches to those columns; the others are
    skipped by the parser instead of being materialised.
    """
    header = read_header(path)
    wanted = [name for name in header if columns is None or name in columns]
    if _is_parquet(path):
        yield from _iter_parquet(path, chunk_rows, wanted)
        return
    convert_options = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in wanted},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        include_columns=wanted,
    )
    read_options = pacsv.ReadOptions(column_names=header, use_threads=True)
    invalid_rows: list[object] = []

    def on_invalid_row(row: object) -> str:
        # Only noted here: the block is then re-read line by line (`_exact_rows`), which
        # knows each line's number (pyarrow's multithreaded parser does not).
        invalid_rows.append(row)
        return "skip"

    parse_options = pacsv.ParseOptions(newlines_in_values=False, invalid_row_handler=on_invalid_row)
    # pyarrow's own streaming reader reads ahead as fast as it can, so a slow consumer
    # (validation, database writes) ends up holding most of the file in memory. Cutting
    # blocks ourselves, on line ends, keeps exactly one block in flight.
    block_bytes = max(1 << 16, chunk_rows * 64)  # ~64 bytes a line in common exports
    line = 2
    try:
        with pa.input_stream(str(path), compression="detect") as raw:
            for block in _line_blocks(raw, block_bytes, skip_header=True, first_bytes=_FIRST_BYTES):
                invalid_rows.clear()
                table = pacsv.read_csv(
                    pa.BufferReader(block),  # reads the block in place
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
                if invalid_rows or _irregular(block, table):
                    batch = _exact_rows(block, line, header, wanted)
                    line += _line_count(block)
                    if batch.frame.height or batch.rejects:
                        yield batch
                    continue
                if table.num_rows == 0:
                    continue
                frame = pl.from_arrow(table)
                assert isinstance(frame, pl.DataFrame)
                yield Batch(frame, line)
                line += table.num_rows
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError, EOFError) as exc:
        raise IngestError(f"{path}: cannot be parsed near line {line} ({exc})") from exc


def _irregular(block: memoryview, table: pa.Table) -> bool:
    """Whether the table's rows may not be the block's lines one for one.

    A blank line is skipped by the parser; a quote left open swallows the line end (the
    value then holds a newline) or, on the file's last line, the end of the file. Quotes
    and blank lines are rare in exports, so the usual block costs two byte scans.
    """
    # The block is a view of the front of a buffer: searched in place, not copied.
    data, end = block.obj, block.nbytes
    assert isinstance(data, bytes | bytearray)
    if data[:1] == b"\n" or data[:2] == b"\r\n":
        return True
    if data.find(b"\n\n", 0, end) >= 0 or data.find(b"\n\r\n", 0, end) >= 0:
        return True
    if data.find(b'"', 0, end) < 0:
        return False
    for column in table.itercolumns():
        if pc.any(pc.match_substring(column, "\n")).as_py():
            return True
    tail_end = end
    while tail_end and data[tail_end - 1 : tail_end] in (b"\n", b"\r"):
        tail_end -= 1
    last = bytes(data[data.rfind(b"\n", 0, tail_end) + 1 : tail_end])
    return _split_line(last.decode("utf-8", errors="replace")) is None


def _split_line(text: str) -> list[str] | None:
    """The fields of one CSV line, or None when its quoting is broken."""
    try:
        return next(csv.reader([text], strict=True), [])
    except csv.Error:
        return None


def _line_count(block: memoryview) -> int:
    data, end = block.obj, block.nbytes
    assert isinstance(data, bytes | bytearray)
    return data.count(b"\n", 0, end) + (0 if data[end - 1 : end] == b"\n" else 1)


def _exact_rows(block: memoryview, first_line: int, header: list[str], wanted: list[str]) -> Batch:
    """The block read one line at a time: each row with its line, each bad line a reject."""
    positions = [header.index(name) for name in wanted]
    rows: list[list[str]] = []
    lines: list[int] = []
    rejects: list[tuple[int, str]] = []
    text = bytes(block).decode("utf-8")
    for number, raw in enumerate(text.split("\n"), start=first_line):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        fields = _split_line(raw)
        if fields is None:
            rejects.append((number, "unterminated or misplaced quote"))
        elif len(fields) != len(header):
            rejects.append((number, f"{len(fields)} fields where the header has {len(header)}"))
        else:
            rows.append([fields[i] for i in positions])
            lines.append(number)
    frame = pl.DataFrame(
        [pl.Series(name, [row[i] for row in rows], dtype=pl.Utf8) for i, name in enumerate(wanted)]
    )
    return Batch(frame, first_line, pl.Series("_line", lines, dtype=pl.Int64), tuple(rejects))


# The first block is small and the next ones double up to the batch size: the writer
# waits only for a small first batch, then each batch is read while the one before it
# (half its size) is written.
_FIRST_BYTES = 1 << 19


def _line_blocks(
    stream: pa.NativeFile,
    block_bytes: int,
    *,
    skip_header: bool,
    first_bytes: int | None = None,
) -> Iterator[memoryview]:
    """Blocks that end on a line end (the last one may not), of about `block_bytes`.

    With `first_bytes`, the first block is about that size (at most `block_bytes`) and
    the next ones double until they reach `block_bytes`.
    """
    target = min(first_bytes or block_bytes, block_bytes)
    pending = b""
    while skip_header:
        chunk = stream.read(target)
        if not chunk:
            return
        pending += chunk
        newline = pending.find(b"\n")
        if newline >= 0:
            pending = pending[newline + 1 :]
            skip_header = False
    while True:
        # What is pending (read past the header, or a partial line) counts to the block.
        size = target - len(pending) if len(pending) < target else target
        # Decompressed straight into the block's buffer, and the block handed on as a view
        # of it: no copy of the block (joining the pending line and slicing the block off
        # used to copy it twice: 0.06 s of CPU on the UCI file's 48 MB).
        data = bytearray(len(pending) + size)
        data[: len(pending)] = pending
        got = stream.readinto(memoryview(data)[len(pending) :])
        if not got:
            if pending:
                yield memoryview(pending)
            return
        end = len(pending) + got
        cut = data.rfind(b"\n", 0, end)
        if cut < 0:
            pending = bytes(data[:end])
            continue
        pending = bytes(data[cut + 1 : end])
        yield memoryview(data)[: cut + 1]
        target = min(target * 2, block_bytes)


def _iter_parquet(path: Path, chunk_rows: int, columns: list[str]) -> Iterator[Batch]:
    row = 1
    try:
        parquet = pq.ParquetFile(path)
        for field in parquet.schema_arrow:
            if field.name in columns and pa.types.is_nested(field.type):
                raise IngestError(
                    f"{path}: column {field.name!r} holds {field.type}, not one value per row"
                )
        for record_batch in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
            frame = pl.from_arrow(pa.Table.from_batches([record_batch]))
            assert isinstance(frame, pl.DataFrame)
            frame = frame.select(pl.col(name).cast(pl.Utf8) for name in frame.columns)
            yield Batch(frame, row)
            row += record_batch.num_rows
    except (pa.ArrowInvalid, OSError, pl.exceptions.PolarsError) as exc:
        raise IngestError(f"{path}: cannot be parsed near row {row} ({exc})") from exc
