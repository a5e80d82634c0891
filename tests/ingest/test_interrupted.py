"""A load killed with SIGKILL mid-file leaves nothing behind; the rerun completes it exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from recsys.ingest import ingest_file
from recsys.ingest.mapping import ColumnMap
from recsys.store.tables import order_lines, orders
from tests.ingest.helpers import CATALOG_HEADER, CATALOG_ROWS, dump, write_csv

pytestmark = pytest.mark.slow

N_LINES = 60_000


def _cli(store_url: str, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": store_url,
        "RECSYS_HOME": str(home),
        "RECSYS_LOG_LEVEL": "debug",
        "RECSYS_LOG_FORMAT": "json",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "recsys", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_load_leaves_no_trace_and_rerun_completes(
    engine: Engine, store_url: tuple[str, str | None], tmp_path: Path
) -> None:
    catalog = write_csv(tmp_path / "catalog.csv", CATALOG_HEADER, CATALOG_ROWS)
    ingest_file(engine, "catalog", catalog, ColumnMap(), rejects_dir=tmp_path / "r")
    items = ["TV1", "MNT1", "HDMI", "CAP"]
    rows = [
        [
            f"O{i // 2}",
            f"C{i % 97}" if i % 2 == 0 else f"C{(i - 1) % 97}",
            items[i % 4],
            "1",
            "2.5",
            f"2026-01-{1 + i % 28:02d}T10:00:00",
        ]
        for i in range(N_LINES)
    ]
    path = write_csv(
        tmp_path / "t.csv",
        ["order_id", "customer_id", "item_id", "quantity", "unit_price", "purchased_at"],
        rows,
    )
    before = dump(engine)

    proc = _cli(store_url[0], tmp_path, "ingest", "transactions", str(path), "--chunk-rows", "2000")
    assert proc.stderr is not None
    batches = 0
    for line in proc.stderr:
        if "ingest_batch_written" in line:
            batches += 1
            if batches == 3:
                break
    assert batches == 3, "the load ended before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert dump(engine) == before

    rerun = _cli(store_url[0], tmp_path, "ingest", "transactions", str(path))
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    assert "rejected 0" in stdout
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(order_lines)).scalar() == N_LINES
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == N_LINES // 2
