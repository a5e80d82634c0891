"""Turning one batch of due customers into offer drafts: the rules, optionally in worker processes.

Everything here is computation on plain values (customers, purchases, model
scores, the catalog); the job process alone reads and writes the store, the
journal and the output, so exactly-once never depends on a worker.

Why processes: the rules are pure Python over ~100 candidates per customer and
hold the GIL, so threads would not overlap; the library's raw batch scoring
uses every core, and the job should too. Workers are forked, so the model,
rules and catalog are shared copy-on-write instead of being pickled per batch.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from recsys.campaign.codes import voucher_code
from recsys.offers import CustomerData, ServingModel, recommend_for_customer
from recsys.records import Item, ScoredItem
from recsys.rules.config import RulesConfig
from recsys.rules.occasions import years_of_membership
from recsys.rules.tiers import loyalty_status, voucher_percent
from recsys.store.campaigns import DueCustomer, IssuedOffer, Occasion

__all__ = ["Draft", "DraftContext", "DraftInput", "Drafter", "draft_offers"]


@dataclass(frozen=True, slots=True)
class Draft:
    """An offer before the store has accepted it: the record and its output line."""

    offer: IssuedOffer
    line: dict[str, Any]

    def with_code(self, code: str) -> Draft:
        voucher = {**self.line["voucher"], "code": code}
        return Draft(replace(self.offer, code=code), {**self.line, "voucher": voucher})


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


@dataclass(frozen=True, slots=True)
class DraftInput:
    """One eligible customer: what the store knows and the model's scores."""

    due: DueCustomer
    data: CustomerData
    scored: Sequence[ScoredItem]


def draft_offers(
    ctx: DraftContext, inputs: Sequence[DraftInput]
) -> tuple[list[Draft], Counter[str]]:
    """Drafts for the customers the contact policy allows; the others counted by reason."""
    skipped: Counter[str] = Counter()
    valid_until = ctx.day + timedelta(days=ctx.valid_days)
    drafts: list[Draft] = []
    for one in inputs:
        customer = one.due.customer
        offer = recommend_for_customer(
            ctx.model, ctx.rules, ctx.catalog, one.data, placement=ctx.occasion,
            limit=ctx.limit_items, now=ctx.now, scored=one.scored,
        )
        if offer.suppressed is not None:
            # opted_out / cap_reached: the contact policy's decision, counted as given.
            skipped[offer.suppressed] += 1
            continue
        tier = loyalty_status(one.data.purchases, customer.joined_at, ctx.rules.loyalty,
                              ctx.now).tier
        percent = voucher_percent(ctx.rules.loyalty, tier, ctx.occasion)
        code = voucher_code(ctx.occasion, dry_run=ctx.dry_run)
        line: dict[str, Any] = {
            "customer_id": customer.customer_id,
            "email": customer.email,
            "occasion": ctx.occasion,
            "date": ctx.day.isoformat(),
            # Birthday: the age being turned; anniversary: whole years of membership.
            "years": years_of_membership(one.due.since, ctx.day),
            "tier": tier,
            "voucher": {"code": code, "percent": percent, "valid_until": valid_until.isoformat()},
            "items": [item.to_dict() for item in offer.items],
        }
        drafts.append(Draft(
            IssuedOffer(customer.customer_id, ctx.occasion, ctx.day, code, percent, valid_until),
            line,
        ))
    return drafts, skipped


# The run's context inside a forked worker, set once by the pool's initializer. It is
# per worker process and never set in the job process; a task argument would pickle
# the model and catalog for every batch.
_WORKER_CONTEXT: DraftContext | None = None


def _init_worker(ctx: DraftContext, parent: int) -> None:
    global _WORKER_CONTEXT
    _WORKER_CONTEXT = ctx

    def exit_with_parent() -> None:
        # A killed job (kill -9) must not leave its workers behind.
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _draft_in_worker(inputs: Sequence[DraftInput]) -> tuple[list[Draft], Counter[str]]:
    assert _WORKER_CONTEXT is not None, "worker not initialised"
    return draft_offers(_WORKER_CONTEXT, inputs)


class Drafter:
    """Drafts batches in order, in `workers` forked processes (or inline with 1).

    `submit` queues a batch and `results` yields finished batches in submission
    order, so the job can record and write them exactly as if drafted inline.
    """

    def __init__(self, ctx: DraftContext, workers: int) -> None:
        self._ctx = ctx
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_worker,
                initargs=(ctx, os.getpid()),
            )
        self.workers = workers if self._pool is not None else 1
        self._pending: list[tuple[Any, Future[tuple[list[Draft], Counter[str]]] | None,
                                  Sequence[DraftInput]]] = []

    def __enter__(self) -> Drafter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=exc[0] is None, cancel_futures=True)

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, tag: Any, inputs: Sequence[DraftInput]) -> None:
        future = self._pool.submit(_draft_in_worker, inputs) if self._pool and inputs else None
        self._pending.append((tag, future, inputs))

    def next_result(self) -> tuple[Any, list[Draft], Counter[str]]:
        """The oldest submitted batch's drafts (waits for it)."""
        tag, future, inputs = self._pending.pop(0)
        if future is not None:
            drafts, skipped = future.result()
        else:
            drafts, skipped = draft_offers(self._ctx, inputs)
        return tag, drafts, skipped

    def drain(self) -> Iterator[tuple[Any, list[Draft], Counter[str]]]:
        while self._pending:
            yield self.next_result()
