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


def restock_due(last_bought_at: datetime, now: datetime, interval_days: float) -> bool:
    """True once `interval_days` have passed since the last purchase (not a moment before)."""
    return utc(now) - utc(last_bought_at) >= timedelta(days=interval_days)


def comes_back(
    holding: Holding,
    behaviour: CategoryBehaviour | None,
    config: CategoriesConfig,
    now: datetime,
) -> str | None:
    """The reason a bought item may be offered again now, or None while it may not.

    - a durable never comes back (its cooldown rule blocks the whole category);
    - a consumable (learned for the item or its category, or an override) comes back once
      `restock_due_share` of its interval has passed since the last purchase;
    - any other item the customer bought on at least `personal_min_days` distinct days
      follows the customer's own cycle: back once `personal_due_share` of their median
      gap has passed, unless an override says the category is regular;
    - everything else stays excluded.
    """
    if behaviour is not None and behaviour.kind == "durable":
        return None
    if behaviour is not None and behaviour.kind == "consumable" and behaviour.interval_days:
        due = behaviour.interval_days * config.restock_due_share
        return RESTOCK_REASON if restock_due(holding.last_bought_at, now, due) else None
    if behaviour is not None and behaviour.source == "override":
        return None
    if (
        config.personal_min_days >= 2
        and holding.days >= config.personal_min_days
        and holding.median_gap_days is not None
    ):
        due = max(holding.median_gap_days, 1.0) * config.personal_due_share
        return HABIT_REASON if restock_due(holding.last_bought_at, now, due) else None
    return None


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
    kept = []
    for candidate in candidates:
        holding = held.get(candidate.item_id)
        if holding is None:
            kept.append(candidate)
            continue
        if not rebuy:
            continue
        reason = comes_back(holding, ctx.behaviour_of(candidate.item_id), config, ctx.now)
        if reason is not None:
            kept.append(replace(candidate, reason=reason))
    return kept
