"""The anniversary / birthday campaign: one voucher and personalized items per due customer.

Per batch of customers: load purchases and contact histories, score everyone
with one batched model call, run the same rules as the API's marketing
placements, then record contact log + vouchers in one transaction and append
the lines to the output. See `recsys.campaign.journal` and docs/campaign.md
for why that order, plus the journal, makes a killed job resumable without
duplicates.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from recsys.campaign.codes import voucher_code
from recsys.campaign.drafting import Draft, DraftContext, DraftedBatch, Drafter, HeldOut
from recsys.campaign.journal import Journal, recover, write_lines
from recsys.offers import ServingModel
from recsys.records import Item
from recsys.rules.config import RulesConfig
from recsys.store.campaigns import (
    DueCustomer,
    Occasion,
    count_customers,
    due_customers,
    record_offers,
)
from recsys.store.feedback import insert_exposures, record_held_out

log = structlog.get_logger(__name__)

OCCASIONS: tuple[Occasion, ...] = ("anniversary", "birthday")
#: Why a due customer got no offer, in the order they are checked.
SKIP_REASONS = ("already_sent", "no_email", "opted_out", "cap_reached", "held_out")
#: Hour (UTC) of a past campaign day that a run for that day replays (`default_now`).
REPLAY_HOUR_UTC = 9
# A voucher code collision needs ~2^28 codes issued; retrying a few times is plenty.
_CODE_ATTEMPTS = 3

Progress = Callable[[int, int], None]
#: Drafted batches, in the order the job records them: (customers handled so far, batch).
DraftedBatches = Generator[tuple[int, DraftedBatch], None, None]
#: Drafts the due customers in batches of at most `batch_size` (reads only; the job
#: records). `local_drafting` runs them in this machine's processes;
#: `training.spark.campaign.spark_drafting` on Spark executors.
DraftSource = Callable[[DraftContext, Engine, Sequence[DueCustomer], int], DraftedBatches]


class CampaignError(Exception):
    """The campaign cannot run (empty store, bad arguments); nothing was recorded."""


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """What a run did. `written` counts new offers; `recovered` lines finished for a killed run."""

    occasion: Occasion
    day: date
    dry_run: bool
    selected: int
    written: int
    recovered: int
    skipped: Mapping[str, int]
    elapsed_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "occasion": self.occasion,
            "date": self.day.isoformat(),
            "dry_run": self.dry_run,
            "selected": self.selected,
            "written": self.written,
            "recovered": self.recovered,
            "skipped": dict(self.skipped),
            "elapsed_s": round(self.elapsed_s, 3),
        }


def default_now(day: date, clock: datetime | None = None) -> datetime:
    """The campaign's instant when none is given (naive UTC): the send time the contact log
    records and the `now` of the contact cap and tiers.

    A run for today, or for a day ahead, sends now: the clock (`clock`, default the wall
    clock). A fixed hour of the day would stamp a 07:11 run at 09:00, so a marketing
    call at 08:00 would not see the contact. A run for a past day replays that day, at
    REPLAY_HOUR_UTC (a backfill, the demo); `--as-of` picks another instant.
    """
    now = clock if clock is not None else datetime.now(UTC).replace(tzinfo=None)
    if day >= now.date():
        return now
    return datetime(day.year, day.month, day.day, REPLAY_HOUR_UTC)


def run_campaign(
    engine: Engine,
    model: ServingModel,
    rules: RulesConfig,
    catalog: Mapping[str, Item],
    *,
    occasion: Occasion,
    day: date,
    out: TextIO,
    journal_dir: Path | None,
    out_path: Path | None = None,
    dry_run: bool = False,
    limit_items: int = 4,
    valid_days: int = 30,
    batch_size: int = 500,
    now: datetime | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    variant_models: Mapping[str, ServingModel] | None = None,
    drafting: DraftSource | None = None,
) -> CampaignSummary:
    """Write one offer line per due customer of `day` to `out` and record it in the store.

    `journal_dir` holds the crash journal (None: no journal, so a killed run
    may lose the lines of the batch in flight, though never duplicate them).
    `out_path` names the file behind `out`, so a later recovery can tell which
    lines reached it. `now` (naive UTC) defaults to `default_now(day)`: the real clock,
    or 09:00 of a past `day`; it is the contact instant recorded and the `now` of the
    contact cap and tiers.
    `progress(done, total)` is called after each batch. `workers` > 1 runs the
    rules in that many forked processes (`recsys.campaign.drafting`); `drafting`
    replaces that with another source of drafts (Spark executors). Either way the
    store's contact log, the journal and the output are only written here, in the
    order the batches arrive. Dry runs write lines
    with `DRYRUN-` codes and record nothing. Raises CampaignError before
    touching anything when the store has no customers or no catalog.
    """
    started = time.perf_counter()
    if occasion not in OCCASIONS:
        raise CampaignError(f"unknown occasion {occasion!r}; choose from {', '.join(OCCASIONS)}")
    if limit_items < 1 or batch_size < 1 or valid_days < 1 or workers < 1:
        raise CampaignError("limit_items, batch_size, valid_days and workers must be at least 1")
    if not catalog:
        raise CampaignError("the catalog is empty; run `recsys ingest catalog` first")
    with engine.connect() as conn:
        if count_customers(conn) == 0:
            raise CampaignError("the store has no customers; run `recsys ingest customers` first")
        due = due_customers(conn, occasion, day)
    instant = now if now is not None else default_now(day)
    log.info("campaign_started", occasion=occasion, date=day.isoformat(), selected=len(due),
             dry_run=dry_run, model_version=model.version)

    # Finish what a killed run committed but did not write, before new work.
    recovered = 0
    if not dry_run and journal_dir is not None:
        recovered = recover(journal_dir, engine, occasion, day, out)

    skipped: Counter[str] = Counter({reason: 0 for reason in SKIP_REASONS})
    written = 0
    journal = (
        Journal.create(journal_dir, occasion, day, out_path)
        if not dry_run and journal_dir is not None
        else None
    )
    ctx = DraftContext(model, rules, catalog, occasion, day, instant, dry_run, limit_items,
                       valid_days, dict(variant_models or {}))

    def record(number: int, done: int, batch: DraftedBatch) -> int:
        drafts = batch.drafts
        skipped.update(batch.skipped)
        lines = [d.text for d in drafts]
        if not dry_run and (drafts or batch.held_out):
            won, held_won = _commit(engine, journal, drafts, batch.held_out, instant, number)
            skipped["already_sent"] += len(drafts) - len(won)
            skipped["already_sent"] += len(batch.held_out) - len(held_won)
            skipped["held_out"] -= len(batch.held_out) - len(held_won)
            lines = [d.text for d in drafts if d.offer.customer_id in won]
        write_lines(out, lines)
        log.debug("campaign_batch_written", batch=number, written=len(lines))
        if journal is not None:
            journal.clear()
        if progress is not None:
            progress(done, len(due))
        return len(lines)

    source = drafting if drafting is not None else local_drafting(workers)
    try:
        with contextlib.closing(source(ctx, engine, due, batch_size)) as batches:
            for number, (done, drafted) in enumerate(batches):
                written += record(number, done, drafted)
    except BaseException:
        if journal is not None:
            journal.release()
        raise
    if journal is not None:
        journal.finish()
    summary = CampaignSummary(
        occasion, day, dry_run, len(due), written, recovered, dict(skipped),
        time.perf_counter() - started,
    )
    log.info("campaign_finished", **summary.to_dict())
    return summary


def local_drafting(workers: int) -> DraftSource:
    """Draft on this machine: in `workers` forked processes, or inline with 1."""

    def batches(
        ctx: DraftContext, engine: Engine, due: Sequence[DueCustomer], batch_size: int
    ) -> DraftedBatches:
        with Drafter(ctx, engine, workers) as drafter:
            for start in range(0, len(due), batch_size):
                batch = due[start : start + batch_size]
                drafter.submit(start + len(batch), batch)
                # Draft a batch ahead per worker while the job records the oldest.
                while drafter.in_flight > drafter.workers:
                    yield drafter.next_result()
            yield from drafter.drain()

    return batches


def _commit(
    engine: Engine,
    journal: Journal | None,
    drafts: list[Draft],
    held_out: list[HeldOut],
    now: datetime,
    number: int,
) -> tuple[set[str], set[str]]:
    """Stage the batch in the journal, then record it with its exposures and held-out rows.

    Returns the customers whose offer won and those whose held-out row won.
    """
    for attempt in range(_CODE_ATTEMPTS):
        if journal is not None:
            journal.stage([d.text for d in drafts])
            log.debug("campaign_batch_staged", batch=number, offers=len(drafts))
        try:
            with engine.begin() as conn:
                won = record_offers(conn, [d.offer for d in drafts], now)
                held_won: set[str] = set()
                if held_out:
                    first = held_out[0].contact
                    held_won = record_held_out(
                        conn, first.occasion, first.day, [h.contact for h in held_out]  # type: ignore[arg-type]
                    )
                insert_exposures(
                    conn,
                    [d.exposure for d in drafts if d.exposure and d.offer.customer_id in won]
                    + [h.exposure for h in held_out if h.contact.customer_id in held_won],
                )
        except IntegrityError:
            # Only the vouchers' primary key can refuse (contact-log duplicates are
            # skipped by ON CONFLICT): a code collision. Fresh codes, same batch.
            if attempt == _CODE_ATTEMPTS - 1:
                raise
            log.warning("campaign_voucher_code_collision", batch=number, attempt=attempt)
            drafts[:] = [d.with_code(voucher_code(d.offer.occasion)) for d in drafts]
            continue
        log.debug("campaign_batch_committed", batch=number, recorded=len(won),
                  held_out=len(held_won))
        return won, held_won
    raise AssertionError("unreachable")  # pragma: no cover
