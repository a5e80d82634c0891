"""The exposure insert (the API writer's and the campaign's) stores what SQLAlchemy's insert did.

`insert_exposures` goes through the driver (SQLite `executemany`, PostgreSQL `COPY`); the
reference is the table's SQLAlchemy insert of `Exposure.row()`, written beside it in the
same store, so every column, the stored text of a SQLite time included, must match.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import Engine, func, insert, select, text

from recsys.feedback.writer import ExposureWriter
from recsys.store.feedback import (
    Exposure,
    HeldOutContact,
    get_exposure,
    insert_exposures,
)
from recsys.store.tables import contact_log, exposures

ROWS = [
    Exposure("ex_a", "c1", "newsletter", "v1", ("i1", "i2", "i3"), datetime(2026, 3, 1, 10, 0)),
    Exposure("ex_b", None, "cross_sell", "v2", ("ünï", 'q"uote', "back\\slash\ttab"),
             datetime(2026, 3, 1, 23, 59, 59, 999_999), "exp", "strong"),
    Exposure("ex_c", "c2", "anniversary", "v1", ("i9",), datetime(2025, 12, 31, 8, 30, 0, 250),
             voucher_code="ANNIV-1", voucher_percent=12.5, voucher_reason="margin_cap"),
    Exposure("ex_d", "c3", "newsletter", "v1", (), datetime(2026, 3, 2, 0, 0), held_out=True,
             voucher_reason="control_group"),
    Exposure("ex_e", "c4", "newsletter", "v1", ("i1",), datetime(2026, 3, 2, 1, 2, 3),
             sent=True),
]


def _stored(engine: Engine, ids: list[str]) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(exposures).where(exposures.c.exposure_id.in_(ids))
            .order_by(exposures.c.exposure_id)
        ).all()
    return [{k: v for k, v in r._mapping.items() if k != "exposure_id"} for r in rows]


def test_insert_stores_what_the_sqlalchemy_insert_stores(engine: Engine) -> None:
    reference = [replace(r, exposure_id="ref_" + r.exposure_id) for r in ROWS]
    with engine.begin() as conn:
        insert_exposures(conn, ROWS)
        conn.execute(insert(exposures), [r.row() for r in reference])
    assert _stored(engine, [r.exposure_id for r in ROWS]) == _stored(
        engine, [r.exposure_id for r in reference]
    )
    with engine.connect() as conn:
        for row in ROWS:
            assert get_exposure(conn, row.exposure_id) == row
        if engine.dialect.name == "sqlite":
            # The raw text: the request path's reads compare it as a string.
            raw = dict(conn.execute(text(
                "SELECT exposure_id, shown_at FROM exposures ORDER BY exposure_id")).all())
            for row in ROWS:
                assert raw[row.exposure_id] == raw["ref_" + row.exposure_id]
            assert raw["ex_a"] == "2026-03-01 10:00:00.000000"


def test_insert_is_part_of_the_callers_transaction(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        insert_exposures(conn, ROWS)
        raise RuntimeError("the rest of the transaction failed")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(exposures)).scalar_one() == 0


def test_writer_flush_writes_the_queue_and_keeps_it_when_the_store_refuses(
    engine: Engine,
) -> None:
    writer = ExposureWriter(engine, background=False)
    held = HeldOutContact("c3", "newsletter", ROWS[3].shown_at.date(), ROWS[3].shown_at, "ex_d")
    for row in ROWS:
        writer.record(row, held if row.held_out else None)
    assert writer.flush() == len(ROWS)
    assert writer.pending == 0
    with engine.connect() as conn:
        assert [get_exposure(conn, r.exposure_id) for r in ROWS] == ROWS
        logged = conn.execute(select(contact_log.c.customer_id, contact_log.c.held_out,
                                     contact_log.c.exposure_id)).all()
        assert [tuple(r) for r in logged] == [("c3", True, "ex_d")]

    # The store refuses the batch (the table is gone for a moment): nothing is written,
    # the rows stay queued, and the next flush, on a new connection, writes them.
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures RENAME TO exposures_away"))
    writer.record(replace(ROWS[0], exposure_id="ex_new"))
    writer.record(replace(ROWS[1], exposure_id="ex_new2"))
    assert writer.flush() == 0
    assert writer.pending == 2
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE exposures_away RENAME TO exposures"))
    assert writer.flush() == 2
    writer.close()
    with engine.connect() as conn:
        assert get_exposure(conn, "ex_new") == replace(ROWS[0], exposure_id="ex_new")
        assert get_exposure(conn, "ex_new2") == replace(ROWS[1], exposure_id="ex_new2")
