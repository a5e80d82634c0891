"""A transactions file of several batches (growing blocks): one rejects file, keys merged
across batches, owners decided by the first batch, on both stores."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recsys.ingest import IngestSummary, ingest_file
from recsys.ingest.mapping import ColumnMap
from recsys.store.tables import order_lines, orders
from tests.ingest.helpers import CATALOG_HEADER, CATALOG_ROWS, write_csv

TX_HEADER = ["order_id", "customer_id", "item_id", "quantity", "unit_price", "purchased_at"]
ROWS = 40_000  # ~1.7 MB: a 512 KB first block, then blocks of 640 KB at most


def _rows() -> list[list[str]]:
    rows = []
    for i in range(ROWS):
        order = f"O{i // 4:06d}"
        if i % 1000 == 7:
            rows.append([order, f"C{i // 4 % 50}", "NOPE", "1", "1", "2026-01-01"])
        else:
            rows.append([order, f"C{i // 4 % 50}", "TV1", "1", "2", "2026-01-01 10:00:00"])
    # The same key and the same order again at the end (another batch): merged / rejected.
    rows.append(["O000000", "C0", "TV1", "2", "2", "2026-01-01 10:00:00"])
    rows.append(["O000001", "C9", "TV1", "1", "2", "2026-01-01 10:00:00"])
    return rows


def _load_in_batches(
    engine: Engine, path: Path, tmp_path: Path, progress: Callable[[int], None] | None = None
) -> IngestSummary:
    """Transactions in batches of 10,000 lines, rejects under `tmp_path`."""
    return ingest_file(engine, "transactions", path, ColumnMap(),
                       rejects_dir=tmp_path / "rejects", chunk_rows=10_000, progress=progress)


def test_several_batches_one_rejects_file_and_merged_keys(engine: Engine, tmp_path: Path) -> None:
    catalog = write_csv(tmp_path / "catalog.csv", CATALOG_HEADER, CATALOG_ROWS)
    ingest_file(engine, "catalog", catalog, ColumnMap(), rejects_dir=tmp_path / "rejects")
    path = write_csv(tmp_path / "t.csv.gz", TX_HEADER, _rows())
    lines_read: list[int] = []
    summary = _load_in_batches(engine, path, tmp_path, progress=lines_read.append)
    assert len(lines_read) >= 3 and lines_read[0] < lines_read[1]  # several, growing
    unknown = ROWS // 1000
    assert summary.read == ROWS + 2
    assert summary.rejected == unknown + 1
    assert summary.accepted == ROWS - unknown + 1
    assert summary.rejects_path is not None
    with summary.rejects_path.open() as handle:
        text = handle.read()
    assert text.count("line,reason,") == 1  # one header line, whatever the batches
    records = list(csv.DictReader(text.splitlines()))
    rejects = {int(r["line"]): r["reason"] for r in records}
    assert len(rejects) == unknown + 1
    # Each reject carries the values of its own line, in every batch.
    written = _rows()
    assert all(
        [r["order_id"], r["customer_id"], r["item_id"]] == written[int(r["line"]) - 2][:3]
        for r in records
    )
    assert rejects[ROWS + 3] == "order 'O000001' belongs to customer 'C1', not 'C9'"
    assert all(
        rejects[i + 2] == "item_id 'NOPE' is not in the catalog" for i in range(7, ROWS, 1000)
    )
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == ROWS // 4
        first = conn.execute(
            select(order_lines.c.quantity).where(order_lines.c.order_id == "O000000")
        ).scalar_one()
    # O000000's four TV1 lines and the repeat at the end: one line of the load.
    assert first == pytest.approx(4 + 2)


def test_an_order_at_another_time_in_a_later_batch_or_load_warns_once(
    engine: Engine, tmp_path: Path
) -> None:
    """The earliest time is kept whether the other time comes in the same batch, a later
    batch (the order is stored by then) or a later load; each such order warns once."""
    catalog = write_csv(tmp_path / "catalog.csv", CATALOG_HEADER, CATALOG_ROWS)
    ingest_file(engine, "catalog", catalog, ColumnMap(), rejects_dir=tmp_path / "rejects")
    at = "2026-01-01 10:00:00"
    rows = [[f"O{i // 4:06d}", "C1", "TV1", "1", "2", at] for i in range(ROWS)]
    rows[5][5] = "2026-01-01 10:30:00"  # O000001: two times in the first batch
    rows.append(["O000002", "C1", "MNT1", "1", "2", "2026-01-01 09:00:00"])  # earlier, later batch
    rows.append(["O000003", "C1", "MNT1", "1", "2", "2026-01-01 11:00:00"])  # later, later batch
    rows.append(["O000004", "C1", "MNT1", "1", "2", at])  # same time, later batch: no warning
    path = write_csv(tmp_path / "t.csv", TX_HEADER, rows)

    def load(path: Path) -> int:
        summary = _load_in_batches(engine, path, tmp_path)
        return sum(summary.warnings.values())

    assert load(path) == 3
    with engine.connect() as conn:
        times = dict(conn.execute(select(orders.c.order_id, orders.c.purchased_at)).all())
    assert [str(times[f"O00000{n}"]) for n in range(5)] == [
        "2026-01-01 10:00:00",
        "2026-01-01 10:00:00",
        "2026-01-01 09:00:00",
        "2026-01-01 10:00:00",
        "2026-01-01 10:00:00",
    ]
    # Loaded again: the stored times of O000002 (09:00) and O000003 differ from the file's
    # first line of each, and O000001 still has two times.
    assert load(path) == 3
    again = write_csv(tmp_path / "again.csv", TX_HEADER, rows[:8])  # O000000, O000001 only
    assert load(again) == 1
