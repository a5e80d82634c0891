"""Per-row errors: a bad line is rejected with its real line number while the rest loads."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine

from recsys.ingest import IngestError, ingest_file
from recsys.ingest.mapping import ColumnMap
from tests.ingest.helpers import CATALOG_HEADER, CATALOG_ROWS, dump, write_csv

TX_HEADER = "order_id,customer_id,item_id,quantity,unit_price,purchased_at"


@pytest.fixture
def catalog(engine: Engine, tmp_path: Path) -> Path:
    path = write_csv(tmp_path / "catalog.csv", CATALOG_HEADER, CATALOG_ROWS)
    ingest_file(engine, "catalog", path, ColumnMap(), rejects_dir=tmp_path / "rejects")
    return path


def _load(engine: Engine, tmp_path: Path, kind: str, path: Path, chunk_rows: int = 1000):  # type: ignore[no-untyped-def]
    return ingest_file(
        engine, kind, path, ColumnMap(), rejects_dir=tmp_path / "rejects", chunk_rows=chunk_rows  # type: ignore[arg-type]
    )


def _rejects(summary) -> dict[int, str]:  # type: ignore[no-untyped-def]
    assert summary.rejects_path is not None
    with summary.rejects_path.open(newline="") as handle:
        return {int(r["line"]): r["reason"] for r in csv.DictReader(handle)}


def _good(i: int) -> str:
    return f"O{i},C{i % 7},TV1,1,499,2026-01-05"


def _stored_orders(engine: Engine) -> set[str]:
    return {row[0] for row in dump(engine)["orders"]}


def test_lines_with_too_many_or_too_few_fields_are_rejected_with_their_line(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    # 5,000 lines: several blocks, so the numbering is checked across block edges too.
    lines = [_good(i) for i in range(5000)]
    bad = {501: _good(9001) + ",extra", 502: "O9002,C1,TV1", 4200: _good(9003) + ",,"}
    for line, text in bad.items():
        lines[line - 2] = text  # file line 2 is lines[0]
    path = tmp_path / "t.csv"
    path.write_text(TX_HEADER + "\n" + "\n".join(lines) + "\n")
    summary = _load(engine, tmp_path, "transactions", path, chunk_rows=500)
    assert (summary.read, summary.accepted, summary.rejected) == (5000, 4997, 3)
    assert _rejects(summary) == {
        501: "7 fields where the header has 6",
        502: "3 fields where the header has 6",
        4200: "8 fields where the header has 6",
    }
    stored = _stored_orders(engine)
    assert len(stored) == 4997 and not stored & {"O9001", "O9002", "O9003", "O499", "O500"}


def test_an_unterminated_quote_is_rejected_at_the_end_of_the_file_and_midway(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    lines = [_good(i) for i in range(10)]
    lines[3] = 'O77,C1,TV1,1,499,"2026-01-05'  # file line 5: the quote swallows the line end
    path = tmp_path / "t.csv"
    path.write_text(TX_HEADER + "\n" + "\n".join(lines) + '\nO99,C1,TV1,1,1,"2026-01-01')
    summary = _load(engine, tmp_path, "transactions", path)
    assert _rejects(summary) == {
        5: "unterminated or misplaced quote",
        12: "unterminated or misplaced quote",
    }
    stored = _stored_orders(engine)
    assert "O99" not in stored and "O77" not in stored
    assert stored == {f"O{i}" for i in range(10) if i != 3}


def test_blank_lines_do_not_shift_the_line_numbers(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(TX_HEADER + "\n" + _good(1) + "\n\n\n" + "O2,C1,NOPE,1,1,2026-01-01\n")
    summary = _load(engine, tmp_path, "transactions", path)
    assert _rejects(summary) == {5: "item_id 'NOPE' is not in the catalog"}
    assert _stored_orders(engine) == {"O1"}


@pytest.mark.parametrize("bad_id", ["C\x00NUL", "C\x01X", "C\tTAB", "C\x7fDEL", "C" * 129])
def test_ids_the_api_could_never_be_asked_about_are_rejected_per_row(
    engine: Engine, catalog: Path, tmp_path: Path, bad_id: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        TX_HEADER + "\n" + _good(1) + "\n" + f'O2,"{bad_id}",TV1,1,1,2026-01-01\n' + _good(3) + "\n"
    )
    summary = _load(engine, tmp_path, "transactions", path)
    reason = _rejects(summary)[3]
    assert reason.startswith("customer_id ") and ("control" in reason or "longer" in reason)
    assert _stored_orders(engine) == {"O1", "O3"}
    customers = tmp_path / "customers.csv"
    customers.write_text(f'customer_id,email\n"{bad_id}",a@b.c\nGOOD,g@b.c\n')
    loaded = _load(engine, tmp_path, "customers", customers)
    assert (loaded.accepted, loaded.rejected) == (1, 1)
    items = tmp_path / "items.csv"
    items.write_text(f'item_id,name\n"I{bad_id}",x\nI-GOOD,y\n')
    loaded = _load(engine, tmp_path, "catalog", items)
    assert (loaded.accepted, loaded.rejected) == (1, 1)
    ids = {row[0] for row in dump(engine)["customers"]} | {row[0] for row in dump(engine)["items"]}
    assert not any(bad_id in i for i in ids)


def test_lines_past_the_order_bounds_are_rejected(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        TX_HEADER
        + "\nO1,C1,TV1,1e308,1,2026-01-01\nO2,C1,TV1,1,1e308,2026-01-01\n"
        + "O3,C1,TV1,0,1,2026-01-01\nO4,C1,TV1,-100001,1,2026-01-01\n"
        + _good(5)
        + "\n"
    )
    summary = _load(engine, tmp_path, "transactions", path)
    rejects = _rejects(summary)
    assert set(rejects) == {2, 3, 4, 5}
    assert rejects[2].startswith("quantity is beyond")
    assert rejects[3].startswith("unit_price is over")
    assert _stored_orders(engine) == {"O5"}


def test_a_parquet_list_column_is_a_clear_error_and_loads_nothing(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "order_id": ["O1"],
            "customer_id": ["C1"],
            "item_id": [["TV1", "HDMI"]],
            "purchased_at": ["2026-01-01"],
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    before = dump(engine)
    with pytest.raises(IngestError, match=r"item_id.*list"):
        _load(engine, tmp_path, "transactions", path)
    assert dump(engine) == before
