"""`recsys report impact`: bad periods are refused, an empty period still writes both files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine


def _cli(engine: Engine, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RECSYS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "RECSYS_HOME": str(home),
    }
    return subprocess.run(
        [sys.executable, "-m", "recsys", "report", "impact", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_period_that_ends_before_it_starts_or_a_bad_date_is_refused(
    engine: Engine, tmp_path: Path
) -> None:
    backwards = _cli(engine, tmp_path, "--from", "2026-10-02", "--to", "2026-10-01")
    assert backwards.returncode == 2 and "before --from" in backwards.stderr
    bad = _cli(engine, tmp_path, "--from", "2026-13-01", "--to", "2026-10-01")
    assert bad.returncode == 2 and "2026-13-01" in bad.stderr
    assert not (tmp_path / "reports").exists()


def test_an_empty_period_writes_both_files_under_recsys_home(
    engine: Engine, tmp_path: Path
) -> None:
    done = _cli(engine, tmp_path, "--from", "2026-10-01", "--to", "2026-10-07")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "reports" / "impact"
    report = json.loads((folder / "impact.json").read_text())
    assert (report["from"], report["to"], report["groups"]) == ("2026-10-01", "2026-10-07", [])
    assert "No exposures in this period" in (folder / "impact.html").read_text()
    assert str(folder / "impact.json") in done.stdout
