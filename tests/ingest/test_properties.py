"""Property: whatever mix of good and malformed rows a file holds, exactly the good ones load."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from recsys.ingest import ingest_file
from recsys.ingest.mapping import ColumnMap
from recsys.store.engine import migrate
from recsys.store.tables import order_lines
from tests.ingest.helpers import CATALOG_HEADER, CATALOG_ROWS, write_csv

GOOD = {
    "customer_id": st.sampled_from(["C1", "C2", "C3"]),
    "item_id": st.sampled_from(["TV1", "MNT1", "HDMI"]),
    "quantity": st.integers(1, 5).map(str),
    "unit_price": st.decimals(0, 500, places=2).map(str),
    "purchased_at": st.dates().map(lambda d: d.isoformat()),
}
BAD = {
    "customer_id": st.just(""),
    "item_id": st.sampled_from(["", "GHOST", "tv1"]),
    "quantity": st.sampled_from(["", "one", "NaN", "inf", "0", "1e999"]),
    "unit_price": st.sampled_from(["-1", "free", "€5"]),
    "purchased_at": st.sampled_from(["", "31/12/2025", "2025-02-30", "soon"]),
}
# "" quantity means the default of 1, so it is good, not bad.
EMPTY_IS_FINE = {"quantity"}


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[str], bool]:
    broken = draw(st.sets(st.sampled_from(sorted(GOOD)), max_size=2))
    values = [draw(BAD[c] if c in broken else GOOD[c]) for c in GOOD]
    row = dict(zip(GOOD, values, strict=True))
    good = all(c in EMPTY_IS_FINE and row[c] == "" for c in broken)
    return values, good


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(rows(), min_size=1, max_size=25))
def test_exactly_the_valid_rows_load(tmp_path: Path, drawn: list[tuple[list[str], bool]]) -> None:
    store = tmp_path / f"p{abs(hash(str(drawn)))}.db"
    engine = create_engine(f"sqlite:///{store}")
    migrate(engine)
    write_csv(tmp_path / "catalog.csv", CATALOG_HEADER, CATALOG_ROWS)
    ingest_file(engine, "catalog", tmp_path / "catalog.csv", ColumnMap(), rejects_dir=tmp_path)
    # One order per row keeps rows independent (no shared-key merging in this property).
    lines = [[f"O{i}", *values] for i, (values, _) in enumerate(drawn)]
    path = write_csv(tmp_path / "t.csv", ["order_id", *GOOD], lines)
    summary = ingest_file(
        engine, "transactions", path, ColumnMap(), rejects_dir=tmp_path, chunk_rows=7
    )
    expected = {f"O{i}" for i, (_, good) in enumerate(drawn) if good}
    with engine.connect() as conn:
        loaded = set(conn.execute(select(order_lines.c.order_id)).scalars())
    assert loaded == expected
    assert summary.accepted == len(expected)
    assert summary.rejected == len(drawn) - len(expected)
    engine.dispose()
    store.unlink()
