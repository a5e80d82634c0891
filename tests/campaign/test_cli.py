"""`python -m recsys campaign ...` as the scheduler runs it: real processes on a real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from recsys.store.tables import contact_log, vouchers
from tests.campaign.conftest import DAY, SENT_AT, Shop, read_lines, setup_shop


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "recsys", "campaign", *args, "--as-of", SENT_AT.isoformat()]


def _cli(shop: Shop, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cmd(*args), env={**os.environ, **shop.env, **env}, capture_output=True, text=True,
        timeout=180, check=False,
    )


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(contact_log)).scalar_one())


def _complete_lines(path: Path) -> list[str]:
    """Lines that end with a newline: a killed writer may leave a torn last line."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [line for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _file(path: Path) -> list[dict[str, Any]]:
    return read_lines(path.read_text(encoding="utf-8")) if path.exists() else []


def test_cli_writes_the_file_and_a_summary(shop: Shop, tmp_path: Path) -> None:
    out = tmp_path / "offers.jsonl"
    done = _cli(shop, "anniversary", "--date", DAY.isoformat(), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert {line["customer_id"] for line in _file(out)} == shop.cast.expected
    assert "selected 10" in done.stderr and "opted_out 1" in done.stderr
    assert "@example.com" not in done.stderr  # emails and codes never reach the log
    assert not any(line["voucher"]["code"] in done.stderr for line in _file(out))
    again = _cli(shop, "anniversary", "--date", DAY.isoformat(), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert len(_file(out)) == len(shop.cast.expected)


def test_cli_stdout_when_no_out(shop: Shop) -> None:
    done = _cli(shop, "anniversary", "--date", DAY.isoformat(), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert {line["customer_id"] for line in read_lines(done.stdout)} == shop.cast.expected
    assert _rows(shop.engine) == 1  # only the newsletter of the capped customer


@pytest.mark.parametrize("value", ["2026-13-01", "22/11/2026", "tomorrow"])
def test_bad_date_fails_and_records_nothing(shop: Shop, value: str) -> None:
    done = _cli(shop, "anniversary", "--date", value)
    assert done.returncode != 0
    assert "not a date" in done.stderr
    assert _rows(shop.engine) == 1


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31"])
def test_date_at_the_calendar_ends_fails_and_records_nothing(shop: Shop, value: str) -> None:
    done = _cli(shop, "anniversary", "--date", value)
    assert done.returncode == 2
    assert "outside the years 1900 to 2999" in done.stderr
    assert _rows(shop.engine) == 1


def test_unwritable_out_fails_and_records_nothing(shop: Shop, tmp_path: Path) -> None:
    missing = _cli(
        shop, "anniversary", "--date", DAY.isoformat(),
        "--out", str(tmp_path / "missing" / "offers.jsonl"),
    )
    assert missing.returncode != 0
    assert "cannot write" in missing.stderr
    directory = _cli(shop, "anniversary", "--date", DAY.isoformat(), "--out", str(tmp_path))
    assert directory.returncode != 0
    assert "directory" in directory.stderr.replace("\n", " ")
    assert _rows(shop.engine) == 1


def test_no_current_model_fails_and_records_nothing(shop: Shop, tmp_path: Path) -> None:
    done = _cli(
        shop, "anniversary", "--date", DAY.isoformat(), RECSYS_HOME=str(tmp_path / "nowhere")
    )
    assert done.returncode != 0
    assert "no current model" in done.stderr
    assert _rows(shop.engine) == 1


def test_empty_store_fails(shop: Shop, tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    done = _cli(shop, "birthday", "--date", DAY.isoformat(), RECSYS_DATABASE_URL=empty)
    assert done.returncode != 0
    assert "empty" in done.stderr or "no customers" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("rerun_into", ["same_file", "new_file"])
@pytest.mark.parametrize(
    "kill_at", ["campaign_batch_staged", "campaign_batch_committed", "campaign_batch_written"]
)
def test_kill_9_then_rerun_gives_everyone_once(
    engine: Engine, demo_dir: Path, tmp_path: Path, kill_at: str, rerun_into: str
) -> None:
    shop = setup_shop(engine, demo_dir, tmp_path, extra_due=30)
    day = DAY.isoformat()
    reference = tmp_path / "clean.jsonl"
    dry = _cli(shop, "anniversary", "--date", day, "--out", str(reference), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    wanted = {line["customer_id"] for line in _file(reference)}
    assert len(wanted) > 20

    first = tmp_path / "run1.jsonl"
    proc = subprocess.Popen(
        _cmd("anniversary", "--date", day, "--out", str(first), "--batch-size", "4"),
        env={**os.environ, **shop.env}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for raw in proc.stderr:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == kill_at and event.get("batch") == 0:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # it really stopped halfway (the kill may land mid-line: the rerun cuts that line off)
    assert len(_complete_lines(first)) < len(wanted)

    second = first if rerun_into == "same_file" else tmp_path / "run2.jsonl"
    done = _cli(shop, "anniversary", "--date", day, "--out", str(second), "--batch-size", "4")
    assert done.returncode == 0, done.stderr
    lines = _file(first) + ([] if second == first else _file(second))
    ids = [line["customer_id"] for line in lines]
    assert len(ids) == len(set(ids)), "a customer got two offers"
    assert set(ids) == wanted, "union of the runs differs from a clean run"
    codes = {line["voucher"]["code"]: line["customer_id"] for line in lines if line["voucher"]}
    with engine.connect() as conn:
        issued = {r.code: r.customer_id for r in conn.execute(select(vouchers))}
        query = select(contact_log).where(contact_log.c.occasion == "anniversary")
        rows = list(conn.execute(query))
    logged = {r.customer_id: (r.voucher_code, r.exposure_id) for r in rows if not r.held_out}
    assert issued == codes  # every voucher issued once, and each one was delivered
    assert logged == {
        line["customer_id"]: (line["voucher"] and line["voucher"]["code"], line["exposure_id"])
        for line in lines
    }
    # The control group is logged held out, once each, and sent nothing.
    held = [r.customer_id for r in rows if r.held_out]
    assert len(held) == len(set(held)) and not set(held) & set(ids)
    assert not list((shop.settings.home / "campaigns").glob("*.journal"))
