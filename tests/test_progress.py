"""Long commands say what they do when no terminal shows a bar (logs, CI, `make run | tee`)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from recsys.progress import PlainProgress, progress_for


def test_off_a_terminal_progress_is_plain_lines_at_most_every_interval() -> None:
    text = io.StringIO()
    console = Console(file=text, force_terminal=False, width=200)
    tracker = progress_for(console, "rows")
    assert isinstance(tracker, PlainProgress)
    with PlainProgress(console, "rows", every_s=3600) as quiet:
        task = quiet.add_task("ingest transactions")
        for _ in range(1000):
            quiet.advance(task, 120)
    lines = text.getvalue().splitlines()
    # Started, then (the interval never elapsed) only the final count.
    assert lines[0] == "ingest transactions: started"
    assert lines[1].startswith("ingest transactions: 120,000 rows (")
    assert len(lines) == 2

    text.seek(0)
    text.truncate()
    with PlainProgress(console, "customers", every_s=0) as chatty:
        task = chatty.add_task("anniversary 2026-11-22")
        chatty.update(task, completed=500, total=1500)
        chatty.update(task, description="scoring", completed=1000)
    lines = text.getvalue().splitlines()
    assert "anniversary 2026-11-22: 500/1,500 customers" in lines[1]
    assert lines[2].startswith("scoring: 1,000/1,500 customers")


def test_a_terminal_gets_the_bar() -> None:
    console = Console(file=io.StringIO(), force_terminal=True)
    assert not isinstance(progress_for(console, "rows"), PlainProgress)


def test_ingest_in_a_pipe_prints_progress_lines(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("item_id,name\n" + "".join(f"I{n},item {n}\n" for n in range(50)))
    done = subprocess.run(
        [sys.executable, "-m", "recsys", "ingest", "catalog", str(catalog)],
        env={"RECSYS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ingest catalog: started" in done.stderr
    assert "ingest catalog: 50 rows (" in done.stderr
