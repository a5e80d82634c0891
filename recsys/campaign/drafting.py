"""Turning one batch of due customers into offer drafts, optionally in worker processes.

A batch is drafted by reading its customers' purchases, contact histories and
already-sent marks from the store (reads only), one batched model call, and the
rules per customer. The job process alone writes: the journal, the contact log
and vouchers, and the output, in batch order; so exactly-once never depends on a
worker.

Why processes: the reads build Python objects and the rules are pure Python over
~100 candidates per customer, all holding the GIL, so threads would not overlap;
the library's raw batch scoring uses every core, and the job should too. Workers
are forked, so the model, rules and catalog are shared copy-on-write instead of
being pickled per batch; each opens its own connection pool to the store.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from recsys.campaign.codes import voucher_code
from recsys.campaign.journal import render_line
from recsys.experiments import NO_ARM, Arm, ExperimentPlan, campaign_holdout
from recsys.offers import CustomerData, ServingModel, recommend_for_customer
from recsys.records import Item, Purchase
from recsys.rules._time import naive_utc
from recsys.rules.categories import CategoryBehaviour
from recsys.rules.config import RulesConfig
from recsys.rules.contact import may_contact
from recsys.rules.occasions import years_of_membership
from recsys.rules.tiers import loyalty_status, voucher_percent
from recsys.rules.vouchers import buy_probability, choose_voucher
from recsys.store.campaigns import DueCustomer, IssuedOffer, Occasion, sent_codes
from recsys.store.contacts import contact_histories
from recsys.store.engine import create_store_engine
from recsys.store.feedback import Exposure, HeldOutContact, new_exposure_id
from recsys.store.purchases import purchases_for

__all__ = ["Draft", "DraftContext", "DraftedBatch", "Drafter", "HeldOut", "draft_batch"]


@dataclass(frozen=True, slots=True)
class Draft:
    """An offer before the store has accepted it: the record, its output line, its exposure.

    `text` is the line rendered once (`render_line`), in the worker that drafted it;
    the job writes that same text to the journal and to the output. `exposure` is
    None in a dry run (nothing is recorded).
    """

    offer: IssuedOffer
    text: str
    exposure: Exposure | None = None

    def with_code(self, code: str) -> Draft:
        line: dict[str, Any] = json.loads(self.text)
        if line.get("voucher") is None:
            return self
        line["voucher"] = {**line["voucher"], "code": code}
        exposure = replace(self.exposure, voucher_code=code) if self.exposure else None
        return Draft(replace(self.offer, code=code), render_line(line), exposure)


@dataclass(frozen=True, slots=True)
class HeldOut:
    """A due customer kept out of the campaign (control group or holdout): logged, not sent."""

    contact: HeldOutContact
    exposure: Exposure


@dataclass(slots=True)
class DraftedBatch:
    drafts: list[Draft] = field(default_factory=list)
    held_out: list[HeldOut] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class DraftContext:
    """What every batch of one run shares.

    `variant_models`: the saved versions the occasion's experiment variants name, by
    version (a variant whose version is missing here gets `model`).
    """

    model: ServingModel
    rules: RulesConfig
    catalog: Mapping[str, Item]
    occasion: Occasion
    day: date
    now: datetime
    dry_run: bool
    limit_items: int
    valid_days: int
    variant_models: Mapping[str, ServingModel] = field(default_factory=dict)
    #: Category behaviours resolved so far, per (model version, variant): each arm's model
    #: and rules are fixed for the run.
    behaviour_caches: dict[tuple[str, str | None], dict[str, CategoryBehaviour | None]] = field(
        default_factory=dict
    )
    plan: ExperimentPlan = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan", ExperimentPlan.from_rules(self.rules))

    def arm(self, customer_id: str) -> tuple[Arm, ServingModel, RulesConfig]:
        arm = self.plan.arm(customer_id, self.occasion) if self.plan.by_placement else NO_ARM
        model = self.model
        if arm.model_version is not None:
            model = self.variant_models.get(arm.model_version, model)
        return arm, model, arm.rules or self.rules


def draft_batch(ctx: DraftContext, engine: Engine, batch: Sequence[DueCustomer]) -> DraftedBatch:
    """Drafts for one batch of due customers, the held-out ones, the skipped ones by reason."""
    out = DraftedBatch()
    skipped = out.skipped
    ids = [d.customer.customer_id for d in batch]
    eligible: list[DueCustomer] = []
    with engine.connect() as conn:
        sent = sent_codes(conn, ctx.occasion, ctx.day, ids)
        histories = contact_histories(conn, ids)
        for due in batch:
            customer = due.customer
            if customer.customer_id in sent:
                skipped["already_sent"] += 1
                continue
            if not (customer.email or "").strip():
                skipped["no_email"] += 1
                continue
            # The contact policy's verdict needs no purchases: a customer it refuses
            # (opted_out, cap_reached; ~10% of a run) costs no purchase read or scoring.
            # `recommend_for_customer` asks the same question and would say the same.
            decision = may_contact(customer.marketing_opt_in,
                                   histories.get(customer.customer_id, ()), ctx.occasion,
                                   ctx.rules.contact, ctx.now)
            if not decision.allowed:
                skipped[decision.reason] += 1
                continue
            # Drawn among those who would be sent the offer, so that the two groups
            # compare like with like (`recsys report impact`).
            why = campaign_holdout(customer.customer_id, ctx.occasion, ctx.rules.control)
            if why is not None:
                skipped["held_out"] += 1
                if not ctx.dry_run:
                    out.held_out.append(_held_out(ctx, customer.customer_id, why))
                continue
            eligible.append(due)
        if not eligible:
            return out
        purchases = purchases_for(conn, [d.customer.customer_id for d in eligible])
    arms = {d.customer.customer_id: ctx.arm(d.customer.customer_id) for d in eligible}
    scored = _score(ctx, eligible, purchases, arms)
    valid_until = ctx.day + timedelta(days=ctx.valid_days)
    for due in eligible:
        customer = due.customer
        cid = customer.customer_id
        arm, model, rules = arms[cid]
        data = CustomerData(cid, customer, purchases.get(cid, []), histories.get(cid, []))
        offer = recommend_for_customer(
            model, rules, ctx.catalog, data, placement=ctx.occasion,
            limit=ctx.limit_items, now=ctx.now, scored=scored.get(cid, []),
            behaviour_cache=ctx.behaviour_caches.setdefault((model.version, arm.variant), {}),
        )
        if offer.suppressed is not None:
            # opted_out / cap_reached: the contact policy's decision, counted as given.
            skipped[offer.suppressed] += 1
            continue
        tier = loyalty_status(data.purchases, customer.joined_at, rules.loyalty, ctx.now).tier
        proposed = (
            arm.voucher_percent
            if arm.voucher_percent is not None
            else voucher_percent(rules.loyalty, tier, ctx.occasion)
        )
        choice = choose_voucher(
            proposed,
            [ctx.catalog[item.item_id] for item in offer.items],
            rules.vouchers,
            buy_probability(data.purchases, ctx.now, ctx.valid_days),
            from_variant=arm.voucher_percent is not None,
        )
        code = (
            voucher_code(ctx.occasion, dry_run=ctx.dry_run) if choice.percent is not None else None
        )
        exposure_id = None if ctx.dry_run else new_exposure_id()
        line: dict[str, Any] = {
            "customer_id": cid,
            "email": customer.email,
            "occasion": ctx.occasion,
            "date": ctx.day.isoformat(),
            # Birthday: the age being turned; anniversary: whole years of membership.
            "years": years_of_membership(due.since, ctx.day),
            "tier": tier,
            "voucher": (
                {"code": code, "percent": choice.percent, "valid_until": valid_until.isoformat()}
                if code is not None
                else None
            ),
            "voucher_reason": choice.reason,
            "items": [item.to_dict() for item in offer.items],
            "exposure_id": exposure_id,
            "variant": arm.variant,
        }
        exposure = (
            Exposure(
                exposure_id, cid, ctx.occasion, model.version,
                tuple(item.item_id for item in offer.items), ctx.now, arm.experiment,
                arm.variant, False, code, choice.percent, choice.reason,
            )
            if exposure_id is not None
            else None
        )
        out.drafts.append(
            Draft(
                IssuedOffer(cid, ctx.occasion, ctx.day, code, choice.percent, valid_until,
                            exposure_id),
                render_line(line),
                exposure,
            )
        )
    return out


def _score(
    ctx: DraftContext,
    eligible: Sequence[DueCustomer],
    purchases: Mapping[str, Sequence[Purchase]],
    arms: Mapping[str, tuple[Arm, ServingModel, RulesConfig]],
) -> dict[str, Any]:
    """One batched model call per (model, pool size, ranker) the batch's arms use; usually
    one. The ranker is the model's for this occasion under the arm's rules (a pair's)."""
    groups: dict[tuple[str, int, int], list[str]] = {}
    rankers: dict[tuple[str, int, int], tuple[ServingModel, Any]] = {}
    for due in eligible:
        cid = due.customer.customer_id
        _, model, rules = arms[cid]
        ranker = model.for_placement(ctx.occasion, rules)
        key = (model.version, rules.candidates.pool_size, id(ranker))
        rankers[key] = (model, ranker)
        groups.setdefault(key, []).append(cid)
    scored: dict[str, Any] = {}
    for key, cids in groups.items():
        model, ranker = rankers[key]
        # The boost's anchors are recent purchases: look their complements up for the batch.
        recent = ctx.rules.complements.recent_days
        since = naive_utc(ctx.now) - timedelta(days=recent)
        model.complements.warm(
            line.item_id
            for cid in cids
            for line in purchases.get(cid, ())
            if line.quantity > 0 and naive_utc(line.purchased_at) > since
        )
        scored.update(ranker.recommend_batch(cids, model.pool(key[1])))
    return scored


def _held_out(ctx: DraftContext, customer_id: str, why: str) -> HeldOut:
    arm, model, _ = ctx.arm(customer_id)
    exposure_id = new_exposure_id()
    # Nothing is shown; the exposure records the moment, the arm, and why (`voucher_reason`).
    return HeldOut(
        HeldOutContact(customer_id, ctx.occasion, ctx.day, ctx.now, exposure_id),
        Exposure(exposure_id, customer_id, ctx.occasion, model.version, (), ctx.now,
                 arm.experiment, arm.variant, True, voucher_reason=why),
    )


@dataclass(frozen=True, slots=True)
class _Worker:
    ctx: DraftContext
    engine: Engine


# The run's context inside a forked worker, set once by the pool's initializer. It is
# per worker process and never set in the job process; a task argument would pickle
# the model and catalog for every batch.
_WORKER: _Worker | None = None


def _init_worker(ctx: DraftContext, store_url: str, parent: int) -> None:
    global _WORKER
    from threadpoolctl import threadpool_limits

    # The workers are the parallelism: threads inside each (BLAS, implicit's OpenMP
    # top-k) would only fight the other workers for the cores.
    threadpool_limits(limits=1)
    _WORKER = _Worker(ctx, create_store_engine(store_url))

    # A killed job (kill -9) must not leave its workers behind: a forked worker shares
    # the job's open output file and journal, so while it lives their flock stays held
    # and a rerun would refuse the output ("another campaign job is writing") or skip
    # the killed job's journal. On Linux the kernel kills the worker as its parent
    # dies, before the parent can be reaped; elsewhere a thread polls for the parent.
    if not _die_with_parent() or os.getppid() != parent:
        def exit_with_parent() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=exit_with_parent, daemon=True).start()


def _die_with_parent() -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux prctl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _draft_in_worker(batch: Sequence[DueCustomer]) -> DraftedBatch:
    assert _WORKER is not None, "worker not initialised"
    return draft_batch(_WORKER.ctx, _WORKER.engine, batch)


class Drafter:
    """Drafts batches in order, in `workers` forked processes (or inline with 1).

    `submit` queues a batch; `next_result` and `drain` hand finished batches back
    in submission order, so the job records and writes them exactly as if drafted
    inline.
    """

    def __init__(self, ctx: DraftContext, engine: Engine, workers: int) -> None:
        self._ctx = ctx
        self._engine = engine
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_worker,
                initargs=(ctx, engine.url.render_as_string(hide_password=False), os.getpid()),
            )
        self.workers = workers if self._pool is not None else 1
        self._pending: list[tuple[Any, Future[DraftedBatch] | None, Sequence[DueCustomer]]] = []

    def __enter__(self) -> Drafter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, tag: Any, batch: Sequence[DueCustomer]) -> None:
        future = self._pool.submit(_draft_in_worker, batch) if self._pool else None
        self._pending.append((tag, future, batch))

    def next_result(self) -> tuple[Any, DraftedBatch]:
        """The oldest submitted batch's drafts (waits for it)."""
        tag, future, batch = self._pending.pop(0)
        if future is not None:
            return tag, future.result()
        return tag, draft_batch(self._ctx, self._engine, batch)

    def drain(self) -> Iterator[tuple[Any, DraftedBatch]]:
        while self._pending:
            yield self.next_result()
