"""A small demo retailer in a real store, a trained model, and a TestClient over the app."""

from __future__ import annotations

import signal
import subprocess
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recsys.data.demo import generate_demo
from recsys.ingest import ingest_file
from recsys.ingest.mapping import ColumnMap
from recsys.rules.config import load_rules
from recsys.settings import Settings
from recsys.store.catalog import catalog_frame
from recsys.store.purchases import purchase_frame
from recsys.store.tables import orders
from training.rules_learning import learn_rule_extras
from training.train import train_model

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app
from api.model_holder import ModelHolder

TRAINED_AT = datetime(2026, 11, 20, 12, 0)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, customers=400, items=120, seed=11)
    return out


def top_buyer(engine: Engine) -> str:
    """The customer with the most orders (ties by id): one with history on every page."""
    with engine.connect() as conn:
        return str(
            conn.execute(
                select(orders.c.customer_id)
                .group_by(orders.c.customer_id)
                .order_by(func.count().desc(), orders.c.customer_id)
                .limit(1)
            ).scalar()
        )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C a `recsys serve` process (its graceful path), killing it after 20 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load_demo(engine: Engine, demo_dir: Path, rejects: Path) -> None:
    for kind, name in (
        ("catalog", "catalog.csv"),
        ("customers", "customers.csv"),
        ("transactions", "transactions.csv.gz"),
    ):
        ingest_file(engine, kind, demo_dir / name, ColumnMap(), rejects_dir=rejects)  # type: ignore[arg-type]


def train(engine: Engine, models_dir: Path, model: str = "als", at: datetime = TRAINED_AT) -> str:
    with engine.connect() as conn:
        purchases = purchase_frame(conn)
        catalog = catalog_frame(conn)
    extras = learn_rule_extras(purchases, catalog, load_rules(None))
    result = train_model(
        purchases,
        catalog,
        model=model,
        now=at,
        models_dir=models_dir,
        extras=extras,
        params={"iterations": 5} if model == "als" else None,
    )
    return result.version


@pytest.fixture
def served(engine: Engine, demo_dir: Path, tmp_path: Path) -> tuple[Engine, Settings]:
    load_demo(engine, demo_dir, tmp_path / "rejects")
    settings = Settings(home=tmp_path, database_url=str(engine.url.render_as_string(False)))
    train(engine, settings.models_dir)
    return engine, settings


@pytest.fixture
def client(served: tuple[Engine, Settings]) -> Iterator[TestClient]:
    engine, settings = served
    app = create_app(settings, engine=engine)
    with TestClient(app) as test_client:
        yield test_client


def make_client(engine: Engine, settings: Settings, **kwargs: object) -> TestClient:
    holder = ModelHolder(settings.models_dir, check_seconds=0.0)
    return TestClient(create_app(settings, engine=engine, model_holder=holder, **kwargs))  # type: ignore[arg-type]
