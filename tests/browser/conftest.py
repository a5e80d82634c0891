"""One small retailer in a SQLite store, trained and evaluated, served by `recsys serve`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update

from recsys.data.demo import generate_demo
from recsys.settings import Settings
from recsys.store.engine import create_store_engine, migrate
from recsys.store.tables import customers, items, order_lines, orders
from tests.api.conftest import load_demo, top_buyer, train
from tests.browser.harness import missing_reason, serve

# Every test here drives a browser against a served console: slow, and in CI only.
pytestmark = pytest.mark.slow

HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
# A real customer whose id looks like markup (ingest accepts any printable id).
HOSTILE_ID = '<i onmouseover="window.__pwned=1">c&amp;1</i><script>window.__pwned=2</script>'
# Some customers joined on this day of an earlier year: the anniversary preview has work.
DUE = date(2026, 11, 24)


@dataclass(frozen=True)
class Console:
    base: str
    settings: Settings
    engine: Engine
    customer_id: str
    hostile_item: str
    log: Path


def prepare_store(home: Path, customers: int, items_count: int) -> tuple[Settings, Engine]:
    """A demo retailer ingested into `home/store.db`, trained, and evaluated by the CLI."""
    demo = home / "demo"
    generate_demo(
        demo, customers=customers, items=items_count, seed=11, due_date=DUE, due_share=0.05
    )
    url = f"sqlite:///{home / 'store.db'}"
    engine = create_store_engine(url)
    migrate(engine)
    load_demo(engine, demo, home / "rejects")
    settings = Settings(home=home, database_url=url)  # type: ignore[call-arg]
    train(engine, settings.models_dir)
    return settings, engine


def evaluate(settings: Settings, log: Path) -> None:
    """`recsys evaluate` as a user runs it, with two quick models (report under reports/)."""
    env = {"RECSYS_HOME": str(settings.home), "RECSYS_DATABASE_URL": settings.database_url}
    with log.open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "recsys", "evaluate", "--models", "popular,repurchase",
             "--served", "repurchase", "--holdout-days", "30"],
            env={**_base_env(), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}


@pytest.fixture(scope="session")
def browser_ready() -> None:
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def console(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    home = tmp_path_factory.mktemp("console")
    settings, engine = prepare_store(home, customers=300, items_count=100)
    log = home / "serve.log"
    evaluate(settings, home / "evaluate.log")
    customer_id = top_buyer(engine)
    with engine.begin() as conn:
        # The customer's most recent item gets a name that would run script if unescaped.
        hostile_item = str(
            conn.execute(
                select(order_lines.c.item_id)
                .join(orders, orders.c.order_id == order_lines.c.order_id)
                .where(orders.c.customer_id == customer_id, order_lines.c.quantity > 0)
                .order_by(orders.c.purchased_at.desc(), order_lines.c.item_id)
                .limit(1)
            ).scalar()
        )
        conn.execute(update(items).where(items.c.item_id == hostile_item).values(name=HOSTILE))
        conn.execute(insert(customers).values(customer_id=HOSTILE_ID, joined_at=date(2025, 5, 1)))
        conn.execute(
            insert(orders).values(
                order_id="hostile-1", customer_id=HOSTILE_ID, purchased_at=datetime(2026, 11, 1)
            )
        )
        conn.execute(
            insert(order_lines).values(
                order_id="hostile-1", item_id=hostile_item, quantity=1, unit_price=9.5,
                load_id="browser-test",
            )
        )
    try:
        with serve(home, settings.database_url, log) as base:
            yield Console(base, settings, engine, customer_id, hostile_item, log)
    finally:
        engine.dispose()


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a test writes its screenshots (kept with pytest's tmp dirs)."""
    return tmp_path / "screenshots"
