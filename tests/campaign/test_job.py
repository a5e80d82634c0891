"""The campaign job as a library call, on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import re
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from recsys.campaign import CampaignSummary, run_campaign
from recsys.campaign.codes import ALPHABET
from recsys.campaign.job import CampaignError
from recsys.campaign.journal import Journal, render_line
from recsys.rules.tiers import voucher_percent
from recsys.store.tables import contact_log, customers, vouchers
from tests.campaign.conftest import DAY, SENT_AT, Shop, read_lines, setup_shop

LINE_FIELDS = [
    "customer_id", "email", "occasion", "date", "years", "tier", "voucher", "voucher_reason",
    "items", "exposure_id", "variant",
]
ITEM_FIELDS = {"item_id", "name", "category", "price", "url", "image_url", "score", "reason"}
CODE = re.compile(rf"^ANNIV(-[{ALPHABET}]{{4}}){{3}}$")


def _run(shop: Shop, out: io.StringIO | Any, **kwargs: Any) -> CampaignSummary:
    options: dict[str, Any] = {
        "occasion": "anniversary", "day": DAY, "journal_dir": shop.settings.home / "campaigns",
        "batch_size": 3, "now": SENT_AT, **kwargs,
    }
    return run_campaign(shop.engine, shop.model, shop.rules, shop.catalog, out=out, **options)


def _logged(engine: Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        query = select(contact_log.c.customer_id, contact_log.c.voucher_code).where(
            contact_log.c.occasion == "anniversary"
        )
        return sorted((r.customer_id, r.voucher_code) for r in conn.execute(query))


def _vouchers(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.code: r.customer_id for r in conn.execute(select(vouchers))}


def test_writes_one_offer_per_due_customer_with_the_spec_fields(shop: Shop) -> None:
    out = io.StringIO()
    summary = _run(shop, out)
    lines = read_lines(out.getvalue())
    assert {line["customer_id"] for line in lines} == shop.cast.expected
    assert summary.written == len(lines) == len(shop.cast.expected)
    for line in lines:
        assert list(line) == LINE_FIELDS
        assert list(line["voucher"]) == ["code", "percent", "valid_until"]
        assert line["occasion"] == "anniversary" and line["date"] == "2026-11-22"
        assert line["email"]
        assert CODE.match(line["voucher"]["code"])
        assert line["voucher"]["valid_until"] == (DAY + timedelta(days=30)).isoformat()
        # The tier's percent, or less where the items' margin cannot carry it.
        tier_percent = voucher_percent(shop.rules.loyalty, line["tier"], "anniversary")
        assert (line["voucher"]["percent"], line["voucher_reason"]) in {
            (tier_percent, "tier"), *((p, "margin_cap") for p in range(1, tier_percent))
        }
        assert line["exposure_id"].startswith("ex_") and line["variant"] is None
        assert 1 <= len(line["items"]) <= 4
        assert all(set(item) == ITEM_FIELDS for item in line["items"])
        stock = [shop.catalog[item["item_id"]].in_stock for item in line["items"]]
        assert all(stock)
    years = {line["customer_id"]: line["years"] for line in lines}
    assert years[shop.cast.regular[0]] == 2 and years[shop.cast.first_purchase] == 2
    # The store holds exactly what was written: one log row and one voucher each.
    assert _logged(shop.engine) == sorted(
        (line["customer_id"], line["voucher"]["code"]) for line in lines
    )
    assert _vouchers(shop.engine) == {
        line["voucher"]["code"]: line["customer_id"] for line in lines
    }


def test_skips_are_counted_by_reason(shop: Shop) -> None:
    out = io.StringIO()
    summary = _run(shop, out)
    written = {line["customer_id"] for line in read_lines(out.getvalue())}
    cast = shop.cast
    assert not written & {cast.opted_out, cast.no_email, cast.capped, cast.joined_today}
    assert summary.selected == len(cast.expected) + 3
    assert summary.skipped == {
        "already_sent": 0, "no_email": 1, "opted_out": 1, "cap_reached": 1, "held_out": 0,
    }


def test_rerun_for_the_same_day_writes_nothing_new(shop: Shop) -> None:
    first = _run(shop, io.StringIO())
    before = (_logged(shop.engine), _vouchers(shop.engine))
    again = io.StringIO()
    second = _run(shop, again)
    assert again.getvalue() == ""
    assert second.written == 0 and second.recovered == 0
    assert second.skipped["already_sent"] == first.written
    assert (_logged(shop.engine), _vouchers(shop.engine)) == before


def test_birthday_after_anniversary_is_capped(shop: Shop) -> None:
    """The campaign's own contacts count toward the cap of the next marketing contact."""
    _run(shop, io.StringIO())
    target = shop.cast.regular[0]
    with shop.engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == target)
            .values(birthday=date(1990, DAY.month, DAY.day))
        )
    out = io.StringIO()
    summary = _run(shop, out, occasion="birthday")
    assert target not in {line["customer_id"] for line in read_lines(out.getvalue())}
    assert summary.skipped["cap_reached"] >= 1


def test_dry_run_writes_lines_but_records_nothing(shop: Shop) -> None:
    out = io.StringIO()
    summary = _run(shop, out, dry_run=True)
    lines = read_lines(out.getvalue())
    assert {line["customer_id"] for line in lines} == shop.cast.expected
    assert all(line["voucher"]["code"].startswith("DRYRUN-") for line in lines)
    assert summary.written == len(lines)
    assert _vouchers(shop.engine) == {}
    assert _logged(shop.engine) == []
    assert not list((shop.settings.home / "campaigns").glob("*.journal"))


class _DiskFull(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_committed_batch_lost_before_output_is_recovered_by_the_rerun(shop: Shop) -> None:
    """The crash window: contact log committed, the line never reached the output."""
    with pytest.raises(OSError):
        _run(shop, _DiskFull())
    committed = _logged(shop.engine)
    assert len(committed) == 3  # the first batch, then the write failed
    out = io.StringIO()
    summary = _run(shop, out)
    lines = read_lines(out.getvalue())
    ids = [line["customer_id"] for line in lines]
    assert sorted(ids) == sorted(shop.cast.expected)  # nobody missing, nobody twice
    assert summary.recovered == 3
    assert summary.written == len(shop.cast.expected) - 3
    # The recovered lines carry the vouchers issued by the first run, not new ones.
    assert sorted((line["customer_id"], line["voucher"]["code"]) for line in lines) == _logged(
        shop.engine
    )
    assert len(_vouchers(shop.engine)) == len(shop.cast.expected)
    assert not list((shop.settings.home / "campaigns").glob("*.journal"))


def test_staged_but_uncommitted_batch_is_dropped(shop: Shop) -> None:
    """A kill between staging and commit: the staged codes were never issued."""
    target = shop.cast.regular[0]
    journal = Journal.create(shop.settings.home / "campaigns", "anniversary", DAY, None)
    journal.stage([render_line({"customer_id": target, "occasion": "anniversary",
                                "date": DAY.isoformat(),
                                "voucher": {"code": "ANNIV-AAAA-AAAA-AAAA"}})])
    journal.release()
    out = io.StringIO()
    summary = _run(shop, out)
    lines = read_lines(out.getvalue())
    assert summary.recovered == 0
    assert sorted(line["customer_id"] for line in lines) == sorted(shop.cast.expected)
    assert "ANNIV-AAAA-AAAA-AAAA" not in _vouchers(shop.engine)


def test_lines_already_in_the_output_file_are_not_repeated(shop: Shop, tmp_path: Path) -> None:
    """A kill after the output was written (maybe torn) but before the journal was cleared."""
    path = tmp_path / "offers.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        _run(shop, handle, out_path=path)
    text = path.read_text(encoding="utf-8")
    rows = text.splitlines(keepends=True)
    lines = read_lines(text)
    # Rebuild the state of a run killed while writing its last line.
    journal = Journal.create(shop.settings.home / "campaigns", "anniversary", DAY, path)
    journal.stage([render_line(line) for line in lines[-2:]])
    journal.release()
    path.write_text("".join(rows[:-1]) + rows[-1][:25], encoding="utf-8")
    with path.open("a", encoding="utf-8") as handle:
        summary = _run(shop, handle, out_path=path)
    assert summary.recovered == 1 and summary.written == 0
    assert sorted(read_lines(path.read_text(encoding="utf-8")), key=str) == sorted(lines, key=str)


def test_an_empty_store_is_an_error_and_records_nothing(engine: Engine, shop: Shop) -> None:
    from recsys.campaign import CampaignError

    with pytest.raises(CampaignError, match="catalog is empty"):
        run_campaign(engine, shop.model, shop.rules, {}, occasion="anniversary", day=DAY,
                     out=io.StringIO(), journal_dir=None)
    assert _logged(engine) == []


def test_two_concurrent_jobs_write_each_offer_once(
    engine: Engine, demo_dir: Path, tmp_path: Path
) -> None:
    shop = setup_shop(engine, demo_dir, tmp_path, extra_due=30)
    expected = io.StringIO()
    _run(shop, expected, dry_run=True)
    wanted = {line["customer_id"] for line in read_lines(expected.getvalue())}
    outputs = [io.StringIO(), io.StringIO()]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def job(out: io.StringIO) -> None:
        try:
            start.wait()
            _run(shop, out, batch_size=2)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [line["customer_id"] for out in outputs for line in read_lines(out.getvalue())]
    assert len(ids) == len(set(ids))
    assert set(ids) == wanted
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(vouchers)).scalar_one() == len(ids)


def test_a_voucher_code_collision_retries_the_batch_with_fresh_codes(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.campaign.job as job
    from recsys.campaign.codes import voucher_code

    with shop.engine.begin() as conn:
        conn.execute(insert(vouchers).values(
            code="ANNIV-TAKEN", customer_id="someone", occasion="anniversary", date=DAY,
            percent=5.0, valid_until=DAY, issued_at=datetime(2026, 1, 1),
        ))
    calls = iter(["ANNIV-TAKEN"])
    # The first code drawn is one already issued; the store must refuse it.
    monkeypatch.setattr(
        job, "voucher_code", lambda *a, **k: next(calls, None) or voucher_code(*a, **k)
    )
    out = io.StringIO()
    summary = _run(shop, out)
    lines = read_lines(out.getvalue())
    assert summary.written == len(shop.cast.expected)
    assert "ANNIV-TAKEN" not in {line["voucher"]["code"] for line in lines}
    assert _logged(shop.engine) == sorted(
        (line["customer_id"], line["voucher"]["code"]) for line in lines
    )


def test_worker_processes_write_what_one_process_writes(shop: Shop, tmp_path: Path) -> None:
    """Rules drafted in forked workers: same lines in the same order, same skips, recorded once."""
    inline = io.StringIO()
    single = _run(shop, inline, dry_run=True)
    parallel_out = io.StringIO()
    parallel = _run(shop, parallel_out, workers=2)
    expected = read_lines(inline.getvalue())
    got = read_lines(parallel_out.getvalue())

    def without_code(line: dict[str, Any]) -> dict[str, Any]:
        return {**line, "voucher": {**line["voucher"], "code": None}, "exposure_id": None}

    assert [without_code(line) for line in got] == [without_code(line) for line in expected]
    assert parallel.skipped == single.skipped and parallel.written == single.written
    assert _logged(shop.engine) == sorted(
        (line["customer_id"], line["voucher"]["code"]) for line in got
    )
    again = io.StringIO()
    assert _run(shop, again, workers=2).written == 0
    assert again.getvalue() == ""


def test_workers_must_be_positive(shop: Shop) -> None:
    with pytest.raises(CampaignError, match="workers"):
        _run(shop, io.StringIO(), workers=0)
