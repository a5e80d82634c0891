"""Ingest against real SQLite and PostgreSQL stores: every rule of the data contract."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Engine, select

from recsys.ingest import IngestError, ingest_file, parse_map
from recsys.ingest.mapping import ColumnMap
from recsys.store.tables import items, order_lines, orders
from tests.ingest.helpers import CATALOG_HEADER, CATALOG_ROWS, dump, write_csv

TX_HEADER = ["order_id", "customer_id", "item_id", "quantity", "unit_price", "purchased_at"]


@pytest.fixture
def catalog(engine: Engine, tmp_path: Path) -> Path:
    path = write_csv(tmp_path / "catalog.csv", CATALOG_HEADER, CATALOG_ROWS)
    ingest_file(engine, "catalog", path, ColumnMap(), rejects_dir=tmp_path / "rejects")
    return path


def load(engine: Engine, tmp_path: Path, kind: str, path: Path, *pairs: str, chunk_rows: int = 3):
    return ingest_file(
        engine,
        kind,  # type: ignore[arg-type]
        path,
        parse_map(list(pairs), kind),  # type: ignore[arg-type]
        rejects_dir=tmp_path / "rejects",
        chunk_rows=chunk_rows,
    )


def test_catalog_normalises_categories_and_booleans(engine: Engine, catalog: Path) -> None:
    with engine.connect() as conn:
        rows = {r.item_id: r for r in conn.execute(select(items))}
    assert rows["TV1"].category == "electronics/tv"
    assert rows["HDMI"].in_stock is True  # empty means the default
    assert rows["CAP"].in_stock is False
    assert rows["MNT1"].price == pytest.approx(39.9)


def test_catalog_repeated_item_last_row_wins_and_counts_as_updated(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "c.csv", ["item_id", "price"], [["A", "1"], ["B", "2"], ["A", "3"]])
    summary = load(engine, tmp_path, "catalog", path)
    assert (summary.accepted, summary.inserted, summary.updated) == (3, 2, 1)
    with engine.connect() as conn:
        assert conn.execute(select(items.c.price).where(items.c.item_id == "A")).scalar() == 3


def test_partial_catalog_update_keeps_other_columns(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "stock.csv", ["item_id", "in_stock"], [["TV1", "false"]])
    load(engine, tmp_path, "catalog", path)
    with engine.connect() as conn:
        row = conn.execute(select(items).where(items.c.item_id == "TV1")).one()
    assert row.in_stock is False and row.name == 'TV 55" Zentro' and row.price == 499.0


def test_missing_required_columns_loads_nothing_and_names_them(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "t.csv", ["order_id", "item_id"], [["O1", "TV1"]])
    before = dump(engine)
    with pytest.raises(IngestError, match="customer_id, purchased_at"):
        load(engine, tmp_path, "transactions", path)
    assert dump(engine) == before


def test_map_naming_an_absent_source_column_is_an_error(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "t.csv", TX_HEADER, [])
    with pytest.raises(IngestError, match="'Invoice'"):
        load(engine, tmp_path, "transactions", path, "Invoice=order_id")


def test_bad_map_pair_is_an_error() -> None:
    with pytest.raises(IngestError, match="not a transactions column"):
        parse_map(["A=colour"], "transactions")
    with pytest.raises(IngestError, match="SOURCE=canonical"):
        parse_map(["nonsense"], "catalog")


def test_unparseable_file_loads_nothing(engine: Engine, catalog: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip at all")
    before = dump(engine)
    with pytest.raises(IngestError):
        load(engine, tmp_path, "transactions", path)
    assert dump(engine) == before


def test_file_broken_midway_rolls_back_every_chunk(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    good = [[f"O{i}", "C1", "TV1", "1", "1", "2026-01-01"] for i in range(20)]
    path = write_csv(tmp_path / "t.csv", TX_HEADER, good)
    with path.open("ab") as handle:
        handle.write(b"O99,C1,TV1,1,1,\xff\xfe not UTF-8\n")
    before = dump(engine)
    with pytest.raises(IngestError, match="cannot be parsed"):
        load(engine, tmp_path, "transactions", path, chunk_rows=5)
    assert dump(engine) == before
    assert not list((tmp_path / "rejects").glob("transactions-*"))


def test_malformed_rows_are_rejected_with_line_and_reason(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    rows = [
        ["O1", "C1", "TV1", "1", "499", "2026-01-05T10:00:00"],  # line 2: ok
        ["O2", "C1", "TV1", "x", "499", "2026-01-05"],  # 3: bad quantity
        ["O3", "C1", "TV1", "1", "cheap", "2026-01-05"],  # 4: bad price
        ["O4", "C1", "NOPE", "1", "1", "2026-01-05"],  # 5: unknown item
        ["O5", "", "TV1", "1", "1", "2026-01-05"],  # 6: empty customer
        ["O6", "C1", "TV1", "1", "1", "yesterday"],  # 7: bad date
        ["O7", "C2", "HDMI", "2", "9.99", "2026-01-06"],  # 8: ok
        ["O7", "C3", "MNT1", "1", "39.9", "2026-01-06"],  # 9: order of C2, not C3
    ]
    path = write_csv(tmp_path / "t.csv", TX_HEADER, rows)
    summary = load(engine, tmp_path, "transactions", path)
    assert (summary.accepted, summary.rejected) == (2, 6)
    assert summary.rejects_path is not None
    with summary.rejects_path.open() as handle:
        rejects = {int(r["line"]): r["reason"] for r in csv.DictReader(handle)}
    assert rejects == {
        3: "quantity is not a number: 'x'",
        4: "unit_price is not a number: 'cheap'",
        5: "item_id 'NOPE' is not in the catalog",
        6: "empty customer_id",
        7: "purchased_at is not an ISO 8601 date or timestamp: 'yesterday'",
        9: "order 'O7' belongs to customer 'C2', not 'C3'",
    }
    with engine.connect() as conn:
        assert sorted(conn.execute(select(order_lines.c.order_id)).scalars()) == ["O1", "O7"]


def test_customer_conflict_against_an_order_loaded_earlier(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    first = write_csv(tmp_path / "a.csv", TX_HEADER, [["O1", "C1", "TV1", "1", "1", "2026-01-01"]])
    load(engine, tmp_path, "transactions", first)
    second = write_csv(tmp_path / "b.csv", TX_HEADER, [["O1", "C9", "CAP", "1", "1", "2026-01-01"]])
    summary = load(engine, tmp_path, "transactions", second)
    assert summary.rejected == 1 and summary.top_reasons()[0][0].startswith("order belongs")


def test_repeated_keys_are_one_line_across_chunks(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    rows = [
        ["O1", "C1", "CAP", "2", "10", "2026-01-01 10:00:00"],
        ["O1", "C1", "HDMI", "1", "9", "2026-01-01 10:00:00"],
        ["O1", "C1", "CAP", "1", "13", "2026-01-01 10:00:00"],  # same key, next chunk
        ["O1", "C1", "CAP", "1", "14", "2026-01-01 10:00:00"],
    ]
    path = write_csv(tmp_path / "t.csv", TX_HEADER, rows)
    summary = load(engine, tmp_path, "transactions", path, chunk_rows=2)
    assert summary.rejected == 0
    with engine.connect() as conn:
        line = conn.execute(select(order_lines).where(order_lines.c.item_id == "CAP")).one()
    assert line.quantity == 4
    assert line.unit_price == pytest.approx((2 * 10 + 13 + 14) / 4)


def test_order_with_two_timestamps_takes_the_earliest_and_warns(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    rows = [
        ["O1", "C1", "TV1", "1", "499", "2026-01-01 10:05:00"],
        ["O1", "C1", "MNT1", "1", "39", "2026-01-01 10:04:00"],
    ]
    summary = load(engine, tmp_path, "transactions", write_csv(tmp_path / "t.csv", TX_HEADER, rows))
    assert sum(summary.warnings.values()) == 1
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.purchased_at)).scalar() == datetime(2026, 1, 1, 10, 4)


@pytest.mark.parametrize(
    ("rows", "want"),
    [
        pytest.param(
            [
                ["O1", "C1", "TV1", "1", "1", "2026-03-01T12:00:00+02:00"],
                ["O2", "C1", "TV1", "1", "1", "2026-03-01T12:00:00Z"],
                ["O3", "C1", "TV1", "1", "1", "2026-03-01 12:00"],
                ["O4", "C1", "TV1", "1", "1", "2026-03-01"],
            ],
            {
                "O1": datetime(2026, 3, 1, 10, 0),
                "O2": datetime(2026, 3, 1, 12, 0),
                "O3": datetime(2026, 3, 1, 12, 0),
                "O4": datetime(2026, 3, 1, 0, 0),
            },
            id="zoned-first",
        ),
        # The batch's first value picks the shape tried first; the others are retried.
        pytest.param(
            [
                ["O1", "C1", "TV1", "1", "1", "2026-03-01 12:00:00"],
                ["O2", "C1", "TV1", "1", "1", "2026-03-01T12:00:00Z"],
                ["O3", "C1", "TV1", "1", "1", "2026-03-01T12:00:00+02:00"],
            ],
            {
                "O1": datetime(2026, 3, 1, 12, 0),
                "O2": datetime(2026, 3, 1, 12, 0),
                "O3": datetime(2026, 3, 1, 10, 0),
            },
            id="naive-first",
        ),
    ],
)
def test_timestamps_are_stored_as_utc(
    engine: Engine,
    catalog: Path,
    tmp_path: Path,
    rows: list[list[str]],
    want: dict[str, datetime],
) -> None:
    load(engine, tmp_path, "transactions", write_csv(tmp_path / "t.csv", TX_HEADER, rows))
    with engine.connect() as conn:
        got = dict(conn.execute(select(orders.c.order_id, orders.c.purchased_at)).all())
    assert got == want


def test_negative_quantity_is_a_return_and_line_total_gives_unit_price(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    rows = [
        ["R1", "C1", "TV1", "-1", "-499", "2026-01-02"],
        ["O1", "C1", "CAP", "4", "50", "2026-01-01"],
    ]
    path = write_csv(
        tmp_path / "t.csv",
        ["order_id", "customer_id", "item_id", "quantity", "line_total", "purchased_at"],
        rows,
    )
    summary = load(engine, tmp_path, "transactions", path)
    assert summary.rejected == 0
    with engine.connect() as conn:
        got = {r.order_id: (r.quantity, r.unit_price) for r in conn.execute(select(order_lines))}
    assert got == {"R1": (-1, 499), "O1": (4, 12.5)}


def test_loading_the_same_file_twice_changes_nothing(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    rows = [
        ["O1", "C1", "CAP", "2", "10", "2026-01-01"],
        ["O1", "C1", "CAP", "1", "13", "2026-01-01"],
        ["O2", "C2", "TV1", "1", "499", "2026-01-02"],
    ]
    path = write_csv(tmp_path / "t.csv.gz", TX_HEADER, rows)
    load(engine, tmp_path, "transactions", path, chunk_rows=1)
    once = dump(engine)
    again = load(engine, tmp_path, "transactions", path, chunk_rows=1)
    assert dump(engine) == once
    assert again.inserted == 0
    # O1/CAP's two lines merge into the stored line (3 at 11.0): both keys are unchanged.
    assert (again.accepted, again.merged, again.unchanged, again.updated) == (3, 1, 2, 0)


def test_a_reingested_file_reports_its_rows_unchanged_and_an_edit_as_updated(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    tx = [
        ["O1", "C1", "CAP", "2", "10", "2026-01-01"],
        ["O1", "C1", "CAP", "1", "13", "2026-01-01"],  # same key: merged into the line above
        ["O1", "C1", "TV1", "1", "", "2026-01-01"],  # no price: null equals null
        ["O2", "C2", "TV1", "1", "499", "2026-01-02"],
    ]
    people = [["C1", "a@example.com", "2024-02-03", "", "true"], ["C2", "", "", "", "false"]]
    files = {
        "catalog": catalog,
        "customers": write_csv(
            tmp_path / "people.csv",
            ["customer_id", "email", "joined_at", "birthday", "marketing_opt_in"], people,
        ),
        "transactions": write_csv(tmp_path / "t.csv", TX_HEADER, tx),
    }
    first = {kind: load(engine, tmp_path, kind, path, chunk_rows=10) for kind, path in
             files.items()}
    for kind, path in files.items():
        again = load(engine, tmp_path, kind, path, chunk_rows=10)
        unique = first[kind].accepted - first[kind].merged
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, unique), kind
    edited = {
        "catalog": write_csv(tmp_path / "c2.csv", CATALOG_HEADER, [
            [*CATALOG_ROWS[0][:-1], "0" if CATALOG_ROWS[0][-1] != "0" else "1"],
            *CATALOG_ROWS[1:],
        ]),
        "customers": write_csv(
            tmp_path / "people2.csv",
            ["customer_id", "email", "joined_at", "birthday", "marketing_opt_in"],
            [people[0], ["C2", "", "", "1990-05-06", "false"]],
        ),
        "transactions": write_csv(
            tmp_path / "t2.csv", TX_HEADER, [*tx[:3], [*tx[3][:4], "450", tx[3][5]]]
        ),
    }
    for kind, path in edited.items():
        summary = load(engine, tmp_path, kind, path, chunk_rows=10)
        unique = summary.accepted - summary.merged
        assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, unique - 1), kind


def test_mapped_columns_and_hierarchical_category(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "products.csv",
        ["product_id", "department", "product_category", "product_type"],
        [["1", "GROCERY", "COUPON/MISC ITEMS", "BREAD:ITALIAN/FRENCH"], ["2", "DRUG GM", "", "X"]],
    )
    load(
        engine,
        tmp_path,
        "catalog",
        path,
        "product_id=item_id",
        "department+product_category+product_type=category",
    )
    with engine.connect() as conn:
        got = dict(conn.execute(select(items.c.item_id, items.c.category)).all())
    assert got == {"1": "grocery/coupon-misc items/bread:italian-french", "2": "drug gm/x"}


def test_parquet_input(engine: Engine, catalog: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "InvoiceNo": ["O1", "O2"],
            "Customer": ["C1", "C2"],
            "Stock": ["TV1", "HDMI"],
            "Qty": [1, 3],
            "When": [datetime(2026, 1, 1, 9), datetime(2026, 1, 2, 9)],
        }
    ).write_parquet(path)
    summary = load(
        engine,
        tmp_path,
        "transactions",
        path,
        "InvoiceNo=order_id",
        "Customer=customer_id",
        "Stock=item_id",
        "Qty=quantity",
        "When=purchased_at",
    )
    assert (summary.accepted, summary.rejected) == (2, 0)
    with engine.connect() as conn:
        assert conn.execute(
            select(orders.c.purchased_at).where(orders.c.order_id == "O2")
        ).scalar() == datetime(2026, 1, 2, 9)


def test_customers_file(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "customers.csv",
        ["customer_id", "email", "joined_at", "birthday", "marketing_opt_in"],
        [
            ["C1", "a@example.com", "2024-02-29", "1990-05-01", "false"],
            ["C2", "not-an-email", "2024-01-01", "", ""],
            ["C3", "", "2025-13-01", "", ""],
        ],
    )
    summary = load(engine, tmp_path, "customers", path)
    assert summary.accepted == 1 and summary.rejected == 2
    assert dict(summary.reasons) == {
        "email is not an address": 1,
        "joined_at is not an ISO 8601 date": 1,
    }


def test_a_line_of_its_own_keeps_its_price_exactly(
    engine: Engine, catalog: Path, tmp_path: Path
) -> None:
    """Not quantity * price / quantity (3 * 0.1 / 3 is 0.10000000000000002)."""
    rows = [
        ["O1", "C1", "CAP", "3", "0.1", "2026-01-01 10:00:00"],
        ["O1", "C1", "HDMI", "1", "9", "2026-01-01 10:00:00"],
        ["O1", "C1", "HDMI", "3", "0.1", "2026-01-01 10:00:00"],
    ]
    path = write_csv(tmp_path / "t.csv", TX_HEADER, rows)
    load(engine, tmp_path, "transactions", path)
    with engine.connect() as conn:
        got = dict(conn.execute(select(order_lines.c.item_id, order_lines.c.unit_price)).all())
    assert got["CAP"] == 0.1
    assert got["HDMI"] == (1 * 9 + 3 * 0.1) / 4
