"""Spark-trained ALS: same artifact format as the local engine, served unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from recsys.rules.config import load_rules
from recsys.settings import Settings
from recsys.store.catalog import catalog_frame
from recsys.store.purchases import purchase_frame
from tests.api.conftest import demo_dir, load_demo, make_client
from tests.spark.conftest import bad_store_urls
from training.artifacts import current_version, list_versions, load_model, read_meta
from training.errors import TrainingError
from training.serving import load_serving_model
from training.spark.session import SparkUnavailableError, spark_session
from training.spark.source import jdbc_options, store_purchases
from training.spark.train import train_spark

NOW = datetime(2026, 11, 20, 12, 0)
FAST = {"factors": 16, "iterations": 5}
__all__ = ["demo_dir"]  # the shared demo retailer fixture


@pytest.fixture
def demo_store(engine: Engine, demo_dir: Path, tmp_path: Path) -> tuple[Engine, Settings]:
    load_demo(engine, demo_dir, tmp_path / "rejects")
    url = engine.url.render_as_string(hide_password=False)
    return engine, Settings(home=tmp_path, database_url=url)


def test_spark_artifact_serves_like_a_local_one(
    spark: Any, demo_store: tuple[Engine, Settings], tmp_path: Path
) -> None:
    engine, settings = demo_store
    with engine.connect() as conn:
        catalog = catalog_frame(conn)
        local_lines = purchase_frame(conn)
    rules = load_rules(None)
    # PostgreSQL is read over JDBC, SQLite through a Parquet export
    with store_purchases(spark, engine, scratch=tmp_path) as lines:
        assert lines.count() == local_lines.height
        result = train_spark(spark, lines, catalog, rules, params=FAST, as_of=NOW,
                             models_dir=settings.models_dir,
                             engine_info={"name": "spark", "master": "local[2]"})
    assert current_version(settings.models_dir) == result.version
    assert [v.model for v in list_versions(settings.models_dir)] == ["als"]
    meta = read_meta(settings.models_dir, result.version)
    assert meta.params["factors"] == 16 and meta.matrix_params["confidence"] == "binary"
    # --as-of: the lines before it, recency measured from it
    before = local_lines.filter(local_lines.get_column("purchased_at") < NOW)
    assert meta.data_fingerprint["rows"] == before.height < local_lines.height
    assert meta.created_at == NOW
    assert meta.extras["training_engine"] == {"name": "spark", "master": "local[2]"}
    loaded = load_model(settings.models_dir)  # checksums verified
    factors = np.asarray(loaded.recommender.model.user_factors)
    assert factors.shape == (result.counts["users"], 16) and np.abs(factors).sum() > 0

    served = load_serving_model(settings.models_dir)
    assert served.behaviours, "category behaviour learned from the Spark aggregates"
    # complements from the Spark aggregates: the local code's on the same lines (same-day
    # pairs by default; the demo's 400 customers may yield none)
    from recsys.offers import COMPLEMENTS_KEY
    from recsys.rules.learned_complements import LearnedComplements
    from training.rules_learning import learn_rule_extras

    local = learn_rule_extras(before, catalog, rules)[COMPLEMENTS_KEY]
    assert served.complements.to_dict() == LearnedComplements.from_dict(local).to_dict()
    buyer = local_lines.get_column("customer_id")[0]
    with make_client(engine, settings) as client:
        response = client.get(f"/v1/customers/{buyer}/recommendations?limit=4"
                              "&placement=order_confirmation")
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["model_version"] == result.version and not body["fallback"]
    assert len(body["items"]) == 4
    bought = set(local_lines.filter(
        local_lines.get_column("customer_id") == buyer).get_column("item_id"))
    assert all(item["item_id"] in set(catalog.get_column("item_id")) for item in body["items"])
    assert bought  # the buyer really has history, so the list is personalised


def test_empty_lines_keep_the_current_model(spark: Any, tmp_path: Path) -> None:
    empty = spark.createDataFrame(
        [], "customer_id string, item_id string, order_id string, quantity double, "
            "unit_price double, purchased_at timestamp")
    with pytest.raises(TrainingError, match="no purchases"):
        train_spark(spark, empty, None, None, models_dir=tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_only_als_on_spark(spark: Any, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="--engine local"):
        train_spark(spark, spark.range(1), None, None, model="bpr",
                    models_dir=tmp_path)


def test_jdbc_url_keeps_user_password_and_options() -> None:
    url, props = jdbc_options(
        "postgresql+psycopg://bob:s%40cret@db.example:6543/shop?options=-csearch_path%3Dt1")
    assert url == "jdbc:postgresql://db.example:6543/shop"
    assert props["user"] == "bob" and props["password"] == "s@cret"
    assert props["options"] == "-csearch_path=t1"


def test_unreachable_master_is_named_quickly() -> None:
    with pytest.raises(SparkUnavailableError, match="does not answer"), \
            spark_session("spark://127.0.0.1:1"):
        pass


# ---- the command as a user runs it (one Spark start per test: kept to a few) ----------


def _recsys(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recsys", *args], env=env, text=True,
                          capture_output=True, timeout=600, check=False)


@pytest.fixture
def cli_env(demo_store: tuple[Engine, Settings]) -> dict[str, str]:
    engine, settings = demo_store
    return {**os.environ, "RECSYS_HOME": str(settings.home),
            "RECSYS_DATABASE_URL": engine.url.render_as_string(hide_password=False)}


@pytest.mark.slow
def test_cli_train_spark_then_export(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = _recsys(["train", "--engine", "spark", "--spark-master", "local[2]", "--model",
                    "als", "--factors", "8", "--iterations", "3"], cli_env)
    assert done.returncode == 0, done.stderr
    assert "trained als on Spark ->" in done.stdout
    listed = _recsys(["models", "list"], cli_env)
    assert "als" in listed.stdout
    export = tmp_path / "out" / "purchases.parquet"
    exported = _recsys(["export", "purchases", str(export)], cli_env)
    assert exported.returncode == 0, exported.stderr
    import polars as pl
    frame = pl.read_parquet(export)
    assert frame.columns == ["customer_id", "item_id", "order_id", "quantity", "unit_price",
                             "purchased_at"]
    assert frame.height > 1000


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # fails before the store
def test_cli_errors_keep_the_current_model(cli_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(cli_env["RECSYS_HOME"])
    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "current").write_text("2026-01-01T00-00-00-als\n")

    unreachable = _recsys(["train", "--engine", "spark", "--model", "als",
                           "--spark-master", "spark://127.0.0.1:1"], cli_env)
    assert unreachable.returncode != 0
    assert "does not answer" in unreachable.stderr

    no_java = {**cli_env, "PATH": "/nonexistent", "JAVA_HOME": str(tmp_path)}
    java = _recsys(["train", "--engine", "spark", "--model", "als"], no_java)
    assert java.returncode != 0 and "needs Java" in java.stderr

    hidden = tmp_path / "hide" / "pyspark"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    no_spark = {**cli_env, "PYTHONPATH": str(hidden.parent)}
    missing = _recsys(["train", "--engine", "spark", "--model", "als"], no_spark)
    assert missing.returncode != 0
    assert "pip install -e '.[spark]'" in missing.stderr

    wrong = _recsys(["train", "--engine", "spark", "--model", "bpr"], cli_env)
    assert wrong.returncode != 0 and "--engine local" in wrong.stderr
    assert (models / "current").read_text() == "2026-01-01T00-00-00-als\n"


def test_cli_empty_store_fails_before_spark(tmp_path: Path) -> None:
    env = {**os.environ, "RECSYS_HOME": str(tmp_path)}
    env.pop("RECSYS_DATABASE_URL", None)
    done = _recsys(["train", "--engine", "spark", "--model", "als"], env)
    assert done.returncode != 0 and "no purchases to train on" in done.stderr
    assert not (tmp_path / "models" / "current").exists()
    empty = _recsys(["export", "purchases", str(tmp_path / "p.parquet")], env)
    assert empty.returncode == 0 and "exported 0 purchase lines" in empty.stdout


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # only for the home folder
def test_cli_bad_store_login_or_address_is_named_before_spark(
        cli_env: dict[str, str]) -> None:
    models = Path(cli_env["RECSYS_HOME"]) / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "current").write_text("2026-01-01T00-00-00-als\n")
    for case, url in bad_store_urls().items():
        done = _recsys(["train", "--engine", "spark", "--model", "als"],
                       {**cli_env, "RECSYS_DATABASE_URL": url})
        assert done.returncode != 0, case
        assert "cannot open the store postgresql" in done.stderr, done.stderr
        reason = "recsys_nobody" if case == "refused login" else "refused"
        assert reason in done.stderr, done.stderr
        assert "s3cret" not in done.stderr
        assert (models / "current").read_text() == "2026-01-01T00-00-00-als\n"


def test_a_jdbc_login_failure_reads_as_one_line(spark: Any, tmp_path: Path) -> None:
    """Spark's own read of PostgreSQL (JDBC) refused: the Java cause, not its stack trace."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    from recsys.store.engine import create_store_engine
    from training.spark.session import failure_message

    engine = create_store_engine(bad_store_urls()["refused login"])
    with pytest.raises((Py4JJavaError, PySparkException)) as caught, \
            store_purchases(spark, engine, scratch=tmp_path) as lines:
        lines.count()
    message = failure_message(caught.value)
    assert message.startswith("org.postgresql.util.PSQLException"), message
    assert "recsys_nobody" in message and "\n" not in message and "s3cret" not in message
