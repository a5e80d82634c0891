"""The store's purchase lines as a Spark DataFrame, the input of every Spark job.

PostgreSQL is read over JDBC in parallel slices (one query per slice of order ids,
by PostgreSQL's `hashtext`), with the PostgreSQL JDBC driver from Debian's
`libpostgresql-jdbc-java`. SQLite has no JDBC driver here and is a single file on
one machine anyway: its lines go through a Parquet export (`recsys.export`), which
is also what a cluster without access to the database reads (`--purchases PATH`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from recsys.export import export_purchases
from training.errors import TrainingError
from training.spark.session import SparkUnavailableError, jdbc_driver_jar

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["COLUMNS", "jdbc_options", "purchases_from_parquet", "store_purchases"]

COLUMNS = ("customer_id", "item_id", "order_id", "quantity", "unit_price", "purchased_at")
_QUERY = (
    "(SELECT o.customer_id, l.item_id, l.order_id, l.quantity, l.unit_price, o.purchased_at"
    " FROM order_lines l JOIN orders o ON o.order_id = l.order_id) AS purchases"
)


def jdbc_options(url: str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL as a JDBC URL and its connection properties.

    Query parameters (`options=-csearch_path=...`, `sslmode`...) pass through as
    properties; the PostgreSQL JDBC driver knows the libpq names.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {parsed.drivername}")
    host = parsed.host or "localhost"
    port = parsed.port or 5432
    database = quote(parsed.database or "", safe="")
    properties = {"driver": "org.postgresql.Driver"}
    if parsed.username:
        properties["user"] = parsed.username
    if parsed.password is not None:
        properties["password"] = str(parsed.password)
    for key, value in parsed.query.items():
        properties[key] = value if isinstance(value, str) else value[-1]
    return f"jdbc:postgresql://{host}:{port}/{database}", properties


def _normalised(frame: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise TrainingError(f"purchase lines lack columns {missing}")
    return frame.select(
        F.col("customer_id").cast("string"),
        F.col("item_id").cast("string"),
        F.col("order_id").cast("string"),
        F.col("quantity").cast("double"),
        F.col("unit_price").cast("double"),
        # naive UTC: a timestamp in the session's UTC zone
        F.col("purchased_at").cast("timestamp"),
    )


def purchases_from_parquet(spark: SparkSession, path: str | Path) -> DataFrame:
    """Lines of a `recsys export purchases` file (or a folder of such files)."""
    from pyspark.errors import AnalysisException

    try:
        return _normalised(spark.read.parquet(str(path)))
    except AnalysisException as exc:
        raise TrainingError(f"cannot read purchases from {path}: {exc}") from exc


def _jdbc_purchases(spark: SparkSession, url: str, slices: int) -> DataFrame:
    jdbc_url, properties = jdbc_options(url)
    properties["preferTimestampNTZ"] = "true"  # naive UTC, not the JVM's zone
    properties["fetchsize"] = "10000"
    predicates = [
        f"mod(hashtext(order_id)::bigint + 2147483648, {slices}) = {i}" for i in range(slices)
    ]
    return _normalised(
        spark.read.jdbc(jdbc_url, _QUERY, predicates=predicates, properties=properties)
    )


@contextmanager
def store_purchases(
    spark: SparkSession,
    engine: Engine,
    *,
    scratch: Path,
    slices: int = 4,
) -> Iterator[DataFrame]:
    """The purchase lines of the store behind `engine`.

    PostgreSQL: over JDBC in `slices` parallel reads (raises SparkUnavailableError
    when the JDBC driver is not installed). SQLite: exported to a Parquet file under
    `scratch`, removed afterwards.
    """
    if engine.dialect.name == "postgresql":
        if jdbc_driver_jar() is None:
            raise SparkUnavailableError(
                "reading PostgreSQL from Spark needs the PostgreSQL JDBC driver: "
                "apt-get install libpostgresql-jdbc-java, or set RECSYS_SPARK_JDBC_JAR; "
                "or export the lines (`recsys export purchases PATH`) and pass --purchases PATH"
            )
        yield _jdbc_purchases(spark, engine.url.render_as_string(hide_password=False), slices)
        return
    path = scratch / "purchases.parquet"
    with engine.connect() as conn:
        export_purchases(conn, path)
    try:
        yield purchases_from_parquet(spark, path)
    finally:
        path.unlink(missing_ok=True)
