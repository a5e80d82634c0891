"""One Spark session (local[2]) shared by every Spark test; skipped without pyspark/Java."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="pyspark not installed (pip install -e '.[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java on PATH (Spark needs OpenJDK 17)", allow_module_level=True)

MASTER = "local[2]"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from training.spark.session import spark_session

    # few shuffle partitions: the test data is small and each partition costs a task
    conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    with spark_session(MASTER, app_name="recsys-tests", conf=conf) as session:
        yield session
