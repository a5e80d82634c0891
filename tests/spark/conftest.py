"""One Spark session (local[2]) shared by every Spark test; skipped without pyspark/Java."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("pyspark", reason="pyspark not installed (pip install -e '.[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java on PATH (Spark needs OpenJDK 17)", allow_module_level=True)

# local[2, 4]: two cores, and a failed task retried (up to 4 attempts) as on a cluster
MASTER = "local[2,4]"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    from training.spark.session import spark_session

    # few shuffle partitions: the test data is small and each partition costs a task
    conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}
    with spark_session(MASTER, app_name="recsys-tests", conf=conf) as session:
        yield session


def bad_store_urls() -> dict[str, str]:
    """A login the server refuses (with trust authentication, as on this machine, a wrong
    password is accepted, so an unknown user stands in for it) and a port nobody serves."""
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("RECSYS_TEST_DATABASE_URL is not set")
    url = make_url(PG_URL)
    return {
        "refused login": url.set(username="recsys_nobody", password="s3cret")
        .render_as_string(hide_password=False),
        "unreachable": url.set(password="s3cret", port=1).render_as_string(hide_password=False),
    }

