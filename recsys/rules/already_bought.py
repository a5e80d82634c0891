"""Already-bought exclusion, with rebought items coming back when it is time to restock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from recsys.rules._time import utc
from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.categories import CategoryBehaviour
from recsys.rules.config import CategoriesConfig
from recsys.rules.history import Holding

RESTOCK_REASON = "time to restock"
HABIT_REASON = "you buy this regularly"


def comes_back(
    holding: Holding,
    behaviour: CategoryBehaviour | None,
    config: CategoriesConfig,
    now: datetime,
    horizon_days: float = 0.0,
) -> str | None:
    """The reason a bought item may be offered again now, or None while it may not
    (see `offered_from` for when that is).

    `horizon_days` moves the check forward: a newsletter is read and acted on over the
    following days, so an item that comes due within them is offered now.
    """
    found = offered_from(holding, behaviour, config, horizon_days)
    if found is None:
        return None
    at, reason = found
    return reason if utc(now) >= at else None


def offered_from(
    holding: Holding,
    behaviour: CategoryBehaviour | None,
    config: CategoriesConfig,
    horizon_days: float = 0.0,
) -> tuple[datetime, str] | None:
    """When a placement looking `horizon_days` ahead may offer a bought item again (UTC),
    with its reason, or None if it never comes back.

    That is `horizon_days` before the item is due (`back_at`), but a horizon never
    brings it back within `restock_wait_days` of the last purchase: a monthly
    newsletter may remind of pet food due in three weeks, not the day after the
    customer bought it. An item due sooner than that (a weekly habit) is offered when due.
    """
    found = []
    last = utc(holding.last_bought_at)
    wait = timedelta(days=config.restock_wait_days)
    for due, reason in _due_dates(holding, behaviour, config):
        found.append((max(due - timedelta(days=horizon_days), min(due, last + wait)), reason))
    return min(found) if found else None


def back_at(
    holding: Holding,
    behaviour: CategoryBehaviour | None,
    config: CategoriesConfig,
) -> tuple[datetime, str] | None:
    """When a bought item is due again (UTC) and the reason it will carry, or None
    if it never comes back:

    - a durable never comes back (its cooldown rule blocks the whole category);
    - a consumable (learned for the item or its category, or an override) comes back once
      `restock_due_share` of its interval has passed since the last purchase;
    - any non-durable item the customer bought on at least `personal_min_days` distinct
      days follows the customer's own cycle too: back once `personal_due_share` of
      their median gap has passed, unless an override classes its category;
    - when both apply, the earlier wins; everything else stays excluded.
    """
    found = _due_dates(holding, behaviour, config)
    return min(found) if found else None


def _due_dates(
    holding: Holding,
    behaviour: CategoryBehaviour | None,
    config: CategoriesConfig,
) -> list[tuple[datetime, str]]:
    """Each cycle's due date for a bought item (see `back_at`), unordered."""
    if behaviour is not None and behaviour.kind == "durable":
        return []
    last = utc(holding.last_bought_at)
    found: list[tuple[datetime, str]] = []
    if behaviour is not None and behaviour.kind == "consumable" and behaviour.interval_days:
        due = behaviour.interval_days * config.restock_due_share
        found.append((last + timedelta(days=due), RESTOCK_REASON))
    overridden = behaviour is not None and behaviour.source == "override"
    # The customer's own rhythm also brings a learned consumable back: a weekly buyer
    # of an item whose buyers rebuy it monthly on average is due after a week.
    if (
        not overridden
        and config.personal_min_days >= 2
        and holding.days >= config.personal_min_days
        and holding.median_gap_days is not None
    ):
        due = max(holding.median_gap_days, 1.0) * config.personal_due_share
        found.append((last + timedelta(days=due), HABIT_REASON))
    return found


def already_bought(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Drop items the customer has bought, except those due again (see `comes_back`).

    Only placements in `categories.rebuy_placements` bring bought items back: an
    anniversary or birthday voucher is for something new, not a discount on what the
    customer buys anyway. "Bought" means any purchase line with a positive quantity at or before
    `now`; an item that was later returned stays excluded (the customer has
    seen it and sent it back).
    """
    held = ctx.holdings()
    config = ctx.config.categories
    rebuy = ctx.placement in config.rebuy_placements
    horizon = config.horizon_days(ctx.placement)
    kept = []
    for candidate in candidates:
        holding = held.get(candidate.item_id)
        if holding is None:
            kept.append(candidate)
            continue
        if not rebuy:
            continue
        reason = comes_back(
            holding, ctx.behaviour_of(candidate.item_id), config, ctx.now, horizon
        )
        if reason is not None:
            kept.append(replace(candidate, reason=reason))
    return kept
