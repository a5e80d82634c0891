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

import json
import multiprocessing
import os
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
from recsys.offers import CustomerData, ServingModel, recommend_for_customer
from recsys.records import Item
from recsys.rules._time import naive_utc
from recsys.rules.categories import CategoryBehaviour
from recsys.rules.config import RulesConfig
from recsys.rules.contact import may_contact
from recsys.rules.occasions import years_of_membership
from recsys.rules.tiers import loyalty_status, voucher_percent
from recsys.store.campaigns import DueCustomer, IssuedOffer, Occasion, sent_codes
from recsys.store.contacts import contact_histories
from recsys.store.engine import create_store_engine
from recsys.store.purchases import purchases_for

__all__ = ["Draft", "DraftContext", "Drafter", "draft_batch"]


@dataclass(frozen=True, slots=True)
class Draft:
    """An offer before the store has accepted it: the record and its output line.

    `text` is the line rendered once (`render_line`), in the worker that drafted it;
    the job writes that same text to the journal and to the output.
    """

    offer: IssuedOffer
    text: str

    def with_code(self, code: str) -> Draft:
        line: dict[str, Any] = json.loads(self.text)
        line["voucher"] = {**line["voucher"], "code": code}
        return Draft(replace(self.offer, code=code), render_line(line))


@dataclass(frozen=True, slots=True)
class DraftContext:
    """What every batch of one run shares."""

    model: ServingModel
    rules: RulesConfig
    catalog: Mapping[str, Item]
    occasion: Occasion
    day: date
    now: datetime
    dry_run: bool
    limit_items: int
    valid_days: int
    #: Category behaviours resolved so far (model and rules are fixed for the run).
    behaviour_cache: dict[str, CategoryBehaviour | None] = field(default_factory=dict)


def draft_batch(
    ctx: DraftContext, engine: Engine, batch: Sequence[DueCustomer]
) -> tuple[list[Draft], Counter[str]]:
    """Drafts for one batch of due customers, the skipped ones counted by reason."""
    skipped: Counter[str] = Counter()
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
            eligible.append(due)
        if not eligible:
            return [], skipped
        purchases = purchases_for(conn, [d.customer.customer_id for d in eligible])
    # The boost's anchors are recent purchases: look their complements up for the batch.
    since = naive_utc(ctx.now) - timedelta(days=ctx.rules.complements.recent_days)
    ctx.model.complements.warm(
        line.item_id
        for due in eligible
        for line in purchases.get(due.customer.customer_id, ())
        if line.quantity > 0 and naive_utc(line.purchased_at) > since
    )
    # One model call for the whole batch; the rules then run per customer.
    scored = ctx.model.recommender.recommend_batch(
        [d.customer.customer_id for d in eligible], ctx.model.pool(ctx.rules.candidates.pool_size)
    )
    valid_until = ctx.day + timedelta(days=ctx.valid_days)
    drafts: list[Draft] = []
    for due in eligible:
        customer = due.customer
        cid = customer.customer_id
        data = CustomerData(cid, customer, purchases.get(cid, []), histories.get(cid, []))
        offer = recommend_for_customer(
            ctx.model, ctx.rules, ctx.catalog, data, placement=ctx.occasion,
            limit=ctx.limit_items, now=ctx.now, scored=scored.get(cid, []),
            behaviour_cache=ctx.behaviour_cache,
        )
        if offer.suppressed is not None:
            # opted_out / cap_reached: the contact policy's decision, counted as given.
            skipped[offer.suppressed] += 1
            continue
        tier = loyalty_status(data.purchases, customer.joined_at, ctx.rules.loyalty, ctx.now).tier
        percent = voucher_percent(ctx.rules.loyalty, tier, ctx.occasion)
        code = voucher_code(ctx.occasion, dry_run=ctx.dry_run)
        line: dict[str, Any] = {
            "customer_id": cid,
            "email": customer.email,
            "occasion": ctx.occasion,
            "date": ctx.day.isoformat(),
            # Birthday: the age being turned; anniversary: whole years of membership.
            "years": years_of_membership(due.since, ctx.day),
            "tier": tier,
            "voucher": {"code": code, "percent": percent, "valid_until": valid_until.isoformat()},
            "items": [item.to_dict() for item in offer.items],
        }
        drafts.append(
            Draft(
                IssuedOffer(cid, ctx.occasion, ctx.day, code, percent, valid_until),
                render_line(line),
            )
        )
    return drafts, skipped


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

    def exit_with_parent() -> None:
        # A killed job (kill -9) must not leave its workers behind.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _draft_in_worker(batch: Sequence[DueCustomer]) -> tuple[list[Draft], Counter[str]]:
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
        self._pending: list[tuple[Any, Future[tuple[list[Draft], Counter[str]]] | None,
                                  Sequence[DueCustomer]]] = []

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

    def next_result(self) -> tuple[Any, list[Draft], Counter[str]]:
        """The oldest submitted batch's drafts (waits for it)."""
        tag, future, batch = self._pending.pop(0)
        if future is not None:
            drafts, skipped = future.result()
        else:
            drafts, skipped = draft_batch(self._ctx, self._engine, batch)
        return tag, drafts, skipped

    def drain(self) -> Iterator[tuple[Any, list[Draft], Counter[str]]]:
        while self._pending:
            yield self.next_result()
