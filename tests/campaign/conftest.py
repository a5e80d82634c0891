"""A demo retailer with hand-placed due customers, a trained model, and campaign helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from recsys.offers import ServingModel
from recsys.records import Item
from recsys.rules.config import RulesConfig, load_rules
from recsys.settings import Settings
from recsys.store.catalog import load_items
from recsys.store.purchases import OrderIn, OrderLineIn, record_order
from recsys.store.tables import contact_log, customers, orders
from tests.api.conftest import demo_dir, load_demo, train
from training.serving import load_serving_model

__all__ = ["demo_dir"]

DAY = date(2026, 11, 22)
#: The instant the tests' scheduler runs DAY's job (the job itself defaults to the clock).
SENT_AT = datetime(2026, 11, 22, 9, 0)
OTHER_DAY = date(2020, 1, 15)


@dataclass(frozen=True, slots=True)
class Cast:
    """Who is who among the due customers of DAY."""

    regular: tuple[str, ...]  # opted in, with email, not contacted lately
    opted_out: str
    no_email: str
    capped: str  # a newsletter went out two days before DAY
    joined_today: str  # joined on DAY itself: not due
    first_purchase: str  # no join date; first purchase on DAY's month/day in 2024

    @property
    def expected(self) -> set[str]:
        return {*self.regular, self.first_purchase}


@dataclass(frozen=True, slots=True)
class Shop:
    engine: Engine
    settings: Settings
    model: ServingModel
    rules: RulesConfig
    catalog: dict[str, Item]
    cast: Cast

    @property
    def env(self) -> dict[str, str]:
        """Environment for a `python -m recsys` subprocess on this store."""
        return {
            "RECSYS_DATABASE_URL": self.engine.url.render_as_string(hide_password=False),
            "RECSYS_HOME": str(self.settings.home),
            "RECSYS_LOG_LEVEL": "debug",
            "RECSYS_LOG_FORMAT": "json",
        }


def buyers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = select(orders.c.customer_id).distinct().order_by(orders.c.customer_id)
        return list(conn.execute(query).scalars())


def make_due(engine: Engine, customer_ids: list[str], joined: date) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.customer_id.in_(customer_ids))
            .values(joined_at=joined, marketing_opt_in=True)
        )
        for cid in customer_ids:
            conn.execute(
                update(customers)
                .where(customers.c.customer_id == cid, customers.c.email.is_(None))
                .values(email=f"{cid.lower()}@example.com")
            )


def setup_shop(engine: Engine, demo_dir: Path, home: Path, *, extra_due: int = 0) -> Shop:
    """Demo data where exactly the Cast (plus `extra_due` regulars) is due on DAY."""
    load_demo(engine, demo_dir, home / "rejects")
    settings = Settings(home=home, database_url=engine.url.render_as_string(hide_password=False))
    train(engine, settings.models_dir)
    people = buyers(engine)
    with engine.begin() as conn:
        # Nobody else is due on DAY, not even through a first purchase.
        conn.execute(update(customers).values(joined_at=OTHER_DAY))
    regular = people[: 6 + extra_due]
    opted_out, no_email, capped, joined_today = people[6 + extra_due : 10 + extra_due]
    make_due(engine, [*regular, opted_out, no_email, capped], date(2024, DAY.month, DAY.day))
    make_due(engine, [joined_today], DAY)
    item = next(iter(load_items_now(engine)))
    with engine.begin() as conn:
        conn.execute(
            update(customers).where(customers.c.customer_id == opted_out)
            .values(marketing_opt_in=False)
        )
        conn.execute(
            update(customers).where(customers.c.customer_id == no_email).values(email=None)
        )
        conn.execute(
            insert(contact_log).values(
                customer_id=capped, occasion="newsletter", date=date(2026, 11, 20),
                placement="newsletter", sent_at=datetime(2026, 11, 20, 10, 0),
            )
        )
        conn.execute(
            insert(customers).values(
                customer_id="ZZ-FIRST", email="first@example.com", joined_at=None,
                marketing_opt_in=True,
            )
        )
        # A return-only order before it must not count as the first purchase.
        record_order(conn, OrderIn("ZZ-R", "ZZ-FIRST", datetime(2024, 3, 1, 8), (
            OrderLineIn(item, -1.0, 10.0),)))
        record_order(conn, OrderIn("ZZ-1", "ZZ-FIRST", datetime(2024, 11, 22, 23, 30), (
            OrderLineIn(item, 1.0, 10.0),)))
    model = load_serving_model(settings.models_dir)
    cast = Cast(tuple(regular), opted_out, no_email, capped, joined_today, "ZZ-FIRST")
    return Shop(engine, settings, model, load_rules(None), load_items_now(engine), cast)


def load_items_now(engine: Engine) -> dict[str, Item]:
    with engine.connect() as conn:
        return load_items(conn)


@pytest.fixture
def shop(engine: Engine, demo_dir: Path, tmp_path: Path) -> Shop:
    return setup_shop(engine, demo_dir, tmp_path)


def read_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
