"""The `recsys train --engine spark` job: store -> Spark -> artifact, for the CLI."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from recsys.rules.config import RulesConfig
from recsys.settings import Settings
from recsys.store.tables import order_lines
from training.errors import TrainingError
from training.spark.session import DEFAULT_MASTER, failure_message, spark_session
from training.train import Progress, TrainResult

__all__ = ["parse_conf", "train_on_spark"]


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """`--spark-conf key=value` pairs; raises TrainingError for one without `=`."""
    conf: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TrainingError(f"--spark-conf takes key=value, got {pair!r}")
        conf[key.strip()] = value
    return conf


def train_on_spark(
    settings: Settings,
    engine: Engine,
    rules: RulesConfig,
    *,
    model: str,
    params: Mapping[str, Any],
    as_of: datetime | None = None,
    master: str = DEFAULT_MASTER,
    conf: Mapping[str, str] | None = None,
    purchases: Path | None = None,
    candidates: int = 0,
    progress: Progress | None = None,
) -> TrainResult:
    """Read the purchases (JDBC from PostgreSQL, a Parquet export of SQLite, or the
    Parquet files at `purchases`), fit on Spark, save and switch the current model.

    Raises TrainingPipelineError subclasses, all leaving the current model serving:
    SparkUnavailableError (pyspark, Java, the master or the JDBC driver), TrainingError
    (bad settings, unreadable store, empty store), ArtifactError.
    """
    from recsys.store.catalog import catalog_frame
    from training.spark.source import purchases_from_parquet, store_purchases
    from training.spark.train import SPARK_MODELS, train_spark

    if model not in SPARK_MODELS:
        raise TrainingError(
            f"--engine spark fits {', '.join(SPARK_MODELS)}, not {model!r}; "
            "train the others with --engine local"
        )
    with engine.connect() as conn:
        catalog = catalog_frame(conn)
        # an empty store fails here, in a second, not after Spark has started
        if purchases is None and conn.execute(select(func.count()).select_from(
                order_lines)).scalar_one() == 0:
            raise TrainingError(
                "no purchases to train on; run `recsys ingest transactions` first"
            )
    scratch_root = settings.home / "spark"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with (
        spark_session(master, app_name=f"recsys-train-{model}", conf=conf) as spark,
        tempfile.TemporaryDirectory(dir=scratch_root) as scratch,
    ):
        from py4j.protocol import Py4JJavaError
        from pyspark.errors import PySparkException

        info = {
            "name": "spark",
            "spark_version": spark.version,
            "master": master,
            "source": str(purchases) if purchases is not None else engine.dialect.name,
        }
        try:
            if purchases is not None:
                lines_cm: Any = contextlib.nullcontext(purchases_from_parquet(spark, purchases))
            else:
                lines_cm = store_purchases(spark, engine, scratch=Path(scratch))
            with lines_cm as lines:
                return train_spark(
                    spark,
                    lines,
                    catalog,
                    rules,
                    model=model,
                    params=params,
                    as_of=as_of,
                    models_dir=settings.models_dir,
                    progress=progress,
                    keep=settings.model_retention,
                    candidates=candidates,
                    engine_info=info,
                )
        except (Py4JJavaError, PySparkException) as exc:
            raise TrainingError(f"the Spark job failed: {failure_message(exc)}") from exc

