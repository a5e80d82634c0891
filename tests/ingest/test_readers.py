"""CSV blocks: cut on line ends, small at first, then growing to the batch size."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from recsys.ingest.readers import _line_blocks, iter_batches
from tests.ingest.helpers import write_csv


def _data(lines: int) -> bytes:
    return b"h1,h2\n" + b"".join(b"%d,value-%d\n" % (i, i) for i in range(lines))


def test_blocks_ramp_up_end_on_lines_and_lose_nothing() -> None:
    data = _data(20_000)
    blocks = [
        bytes(block)
        for block in _line_blocks(
            pa.BufferReader(data), 64_000, skip_header=True, first_bytes=8_000
        )
    ]
    assert b"".join(blocks) == data[data.index(b"\n") + 1 :]
    assert all(block.endswith(b"\n") for block in blocks)
    sizes = [len(block) for block in blocks]
    # About 8k, 16k, 32k, then 64k each (a block ends on the last line end within reach).
    assert 7_900 < sizes[0] <= 8_000
    assert 15_900 < sizes[1] <= 16_000
    assert 31_900 < sizes[2] <= 32_000
    assert all(63_900 < size <= 64_000 for size in sizes[3:-1])


def test_without_a_first_size_every_block_is_full_size() -> None:
    data = _data(5_000)
    blocks = [
        bytes(block) for block in _line_blocks(pa.BufferReader(data), 10_000, skip_header=False)
    ]
    assert b"".join(blocks) == data
    assert all(9_900 < len(block) <= 10_000 for block in blocks[:-1])


def test_a_line_longer_than_a_block_stays_whole() -> None:
    long_line = b"x" * 50_000 + b"\n"
    data = b"h\n" + b"a\n" + long_line + b"b\n"
    blocks = [
        bytes(block)
        for block in _line_blocks(pa.BufferReader(data), 1_000, skip_header=True, first_bytes=100)
    ]
    assert b"".join(blocks) == data[2:]
    assert long_line in blocks or any(long_line in block for block in blocks)
    assert all(block.endswith(b"\n") for block in blocks)


def test_batches_number_lines_across_growing_blocks(tmp_path: Path) -> None:
    rows = [[f"O{i}", f"C{i % 7}"] for i in range(150_000)]  # ~1.7 MB
    path = write_csv(tmp_path / "t.csv.gz", ["order_id", "customer_id"], rows)
    batches = list(iter_batches(path, chunk_rows=20_000))  # blocks of 1.28 MB at most
    assert len(batches) == 3
    assert batches[0].frame.height < batches[1].frame.height  # a small first batch
    line = 2
    for batch in batches:
        assert batch.first_line == line
        assert batch.frame["order_id"][0] == f"O{line - 2}"
        line += batch.frame.height
    assert line - 2 == len(rows)
