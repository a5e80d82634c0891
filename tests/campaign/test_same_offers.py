"""The job's offers do not depend on how a batch is read (issue 19's PostgreSQL reads),
and a paired model drafts the anniversary with its discovery model.

A batch's purchases, contact histories and already-sent marks are read at once (on
PostgreSQL: a lateral join through the driver and array parameters). On a generated
store with a few hundred due customers, a real run (contact log, vouchers and exposures
written) must write exactly the lines of a run whose drafting reads every customer on
their own through the API's one-customer reads, as the job read them before they were
batched, on SQLite and, with RECSYS_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, delete, select

import recsys.campaign.drafting as drafting
from recsys.campaign import run_campaign
from recsys.data.demo import generate_demo
from recsys.records import Purchase
from recsys.rules.config import load_rules
from recsys.store.campaigns import Occasion
from recsys.store.catalog import catalog_frame, load_items
from recsys.store.contacts import contact_history
from recsys.store.purchases import customer_purchases, purchase_frame
from recsys.store.tables import contact_log, exposures, vouchers
from tests.api.conftest import load_demo, train
from tests.campaign.conftest import SENT_AT, read_lines
from training.rules_learning import learn_rule_extras
from training.serving import load_serving_model
from training.train import train_model

DAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def due_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("due-demo")
    # Half the customers joined on DAY's month and day: ~200 due, several batches.
    generate_demo(out, customers=400, items=120, seed=11, due_date=DAY, due_share=0.5)
    return out


def _one_by_one_purchases(conn: Connection, ids: Sequence[str]) -> dict[str, list[Purchase]]:
    return {c: customer_purchases(conn, c) for c in ids}


def _one_by_one_contacts(conn: Connection, ids: Sequence[str]) -> dict[str, Any]:
    return {c: contact_history(conn, c) for c in ids}


def _one_by_one_sent(
    conn: Connection, occasion: Occasion, day: date, ids: Sequence[str]
) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for cid in ids:
        row = conn.execute(
            select(contact_log.c.voucher_code).where(
                contact_log.c.customer_id == cid,
                contact_log.c.occasion == occasion,
                contact_log.c.date == day,
            )
        ).first()
        if row is not None:
            found[cid] = row.voucher_code
    return found


def _masked(text: str) -> list[dict[str, Any]]:
    """The lines without what is drawn at random per run (voucher code, exposure id)."""
    lines = read_lines(text)
    for line in lines:
        if line["voucher"] is not None:
            line["voucher"] = {**line["voucher"], "code": None}
        line["exposure_id"] = None
    return lines


def _recorded(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        logged = sorted(
            (r.customer_id, r.held_out)
            for r in conn.execute(select(contact_log.c.customer_id, contact_log.c.held_out))
        )
        issued = sorted(
            (r.customer_id, r.percent)
            for r in conn.execute(select(vouchers.c.customer_id, vouchers.c.percent))
        )
    return logged, issued


def test_batched_reads_write_the_lines_of_one_customer_reads(
    engine: Engine, due_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_demo(engine, due_demo, tmp_path / "rejects")
    train(engine, tmp_path / "models")
    model = load_serving_model(tmp_path / "models")
    with engine.connect() as conn:
        catalog = load_items(conn)
    rules = load_rules(None)

    def run(name: str) -> tuple[dict[str, Any], str]:
        out = io.StringIO()
        summary = run_campaign(
            engine, model, rules, catalog, occasion="anniversary", day=DAY, out=out,
            journal_dir=tmp_path / name, batch_size=37, now=SENT_AT,
        )
        return summary.to_dict(), out.getvalue()

    batched, batched_text = run("batched")
    batched_recorded = _recorded(engine)
    with engine.begin() as conn:
        for table in (vouchers, contact_log, exposures):
            conn.execute(delete(table))
    with monkeypatch.context() as patch:
        patch.setattr(drafting, "purchases_for", _one_by_one_purchases)
        patch.setattr(drafting, "contact_histories", _one_by_one_contacts)
        patch.setattr(drafting, "sent_codes", _one_by_one_sent)
        reference, reference_text = run("one-by-one")

    assert batched["selected"] > 150 and batched["written"] > 100
    assert {k: v for k, v in batched.items() if k != "elapsed_s"} == {
        k: v for k, v in reference.items() if k != "elapsed_s"
    }
    assert _masked(batched_text) == _masked(reference_text)
    assert batched_recorded == _recorded(engine)


def test_a_pair_drafts_anniversary_offers_with_its_discovery_model(
    engine: Engine, due_demo: Path, tmp_path: Path
) -> None:
    """An anniversary never re-offers, so a pair's offers are its discovery model's."""
    load_demo(engine, due_demo, tmp_path / "rejects")
    with engine.connect() as conn:
        frame, items_frame, catalog = purchase_frame(conn), catalog_frame(conn), load_items(conn)
    rules = load_rules(None)
    extras = learn_rule_extras(frame, items_frame, rules)
    als = {"factors": 8, "iterations": 5}
    lines: dict[str, list[dict[str, Any]]] = {}
    for name, model, params in (
        ("als", "als", als),
        ("paired", "paired", {"rebuy": "repurchase", "discovery": "als", "discovery_params": als}),
    ):
        home = tmp_path / name
        train_model(frame, items_frame, model=model, params=params, now=SENT_AT,
                    models_dir=home, extras=extras, num_threads=1)
        with engine.begin() as conn:
            for table in (vouchers, contact_log, exposures):
                conn.execute(delete(table))
        out = io.StringIO()
        run_campaign(
            engine, load_serving_model(home), rules, catalog, occasion="anniversary", day=DAY,
            out=out, journal_dir=home / "journal", batch_size=37, now=SENT_AT,
        )
        lines[name] = _masked(out.getvalue())
    assert len(lines["paired"]) > 100
    assert lines["paired"] == lines["als"]
