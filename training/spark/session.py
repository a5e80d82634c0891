"""A SparkSession for the recsys jobs, with the failures a user can fix named clearly."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from training.errors import TrainingPipelineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "DEFAULT_MASTER",
    "INSTALL_HINT",
    "SparkUnavailableError",
    "failure_message",
    "jdbc_driver_jar",
    "preflight",
    "require_pyspark",
    "spark_session",
]

DEFAULT_MASTER = "local[*]"
INSTALL_HINT = "pip install -e '.[spark]' (pyspark), with Java 17 (Debian: openjdk-17-jre-headless)"
#: Debian's `libpostgresql-jdbc-java` installs the PostgreSQL JDBC driver here.
_JDBC_JARS = ("/usr/share/java/postgresql.jar",)
_MASTER_CONNECT_SECONDS = 5.0


class SparkUnavailableError(TrainingPipelineError):
    """Spark cannot start: pyspark or Java missing, or the master cannot be reached."""


def require_pyspark() -> None:
    """Raise SparkUnavailableError with the install command when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise SparkUnavailableError(
            f"--engine spark needs pyspark, which is not installed: {INSTALL_HINT}"
        ) from exc


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    if home:
        return (Path(home) / "bin" / "java").is_file()
    return shutil.which("java") is not None


def jdbc_driver_jar() -> str | None:
    """The PostgreSQL JDBC driver: `RECSYS_SPARK_JDBC_JAR`, else Debian's package.

    Spark can fetch it from Maven at start (`spark.jars.packages`), but nothing here
    downloads at run time; the Debian package (`apt-get install libpostgresql-jdbc-java`)
    ships the jar.
    """
    configured = os.environ.get("RECSYS_SPARK_JDBC_JAR")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((jar for jar in _JDBC_JARS if Path(jar).is_file()), None)


def _check_master(master: str) -> None:
    """A standalone master (`spark://host:port`) that does not answer fails in seconds,
    not after Spark's minute of retries."""
    if not master.startswith("spark://"):
        return
    for address in master[len("spark://"):].split(","):
        parts = urlsplit(f"//{address}")
        host, port = parts.hostname, parts.port or 7077
        if host is None:
            raise SparkUnavailableError(f"bad Spark master URL {master!r}")
        try:
            with socket.create_connection((host, port), timeout=_MASTER_CONNECT_SECONDS):
                return
        except OSError:
            continue
    raise SparkUnavailableError(
        f"the Spark master {master} does not answer (checked for "
        f"{_MASTER_CONNECT_SECONDS:.0f} s); start it or pass another --spark-master"
    )


def preflight(master: str) -> None:
    """The checks that need no JVM, in seconds: pyspark, Java, a `spark://` master.

    Raises SparkUnavailableError saying what to install or start.
    """
    require_pyspark()
    if not _java_found():
        raise SparkUnavailableError(
            "--engine spark needs Java (17 or newer): none on PATH or in JAVA_HOME; "
            "install it (Debian: apt-get install openjdk-17-jre-headless)"
        )
    _check_master(master)


@contextmanager
def spark_session(
    master: str = DEFAULT_MASTER,
    *,
    app_name: str = "recsys",
    conf: Mapping[str, str] | None = None,
    stop: bool = True,
) -> Iterator[SparkSession]:
    """A session on `master` in UTC, with the JDBC driver when installed.

    `conf` entries override the defaults (`--spark-conf key=value`). `stop=False`
    leaves the session running for the next caller (tests share one).
    Raises SparkUnavailableError when pyspark or Java is missing or the master is
    unreachable.
    """
    preflight(master)
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    # Executors run this interpreter: the same environment as the driver, locally.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    settings: dict[str, Any] = {
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "8",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    jar = jdbc_driver_jar()
    if jar is not None:
        settings["spark.jars"] = jar
    settings.update(conf or {})
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except (PySparkException, RuntimeError, OSError) as exc:
        raise SparkUnavailableError(f"Spark did not start on {master}: {exc}") from exc
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        if stop:
            session.stop()


def failure_message(exc: BaseException) -> str:
    """The Java cause's message (`PSQLException: FATAL: password authentication failed`),
    not the 200 lines of stack trace below it."""
    # py4j's error holds the Java exception; pyspark's converted ones (AnalysisException:
    # "[FAILED_JDBC.CONNECTION] ... Couldn't connect") keep it as `_origin`
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    while java is not None and java.getCause() is not None:
        java = java.getCause()
    text = java.toString() if java is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
