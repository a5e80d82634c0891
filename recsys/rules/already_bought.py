"""Already-bought exclusion, with consumables coming back when it is time to restock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from recsys.rules._time import utc
from recsys.rules.candidates import Candidate, RuleContext

RESTOCK_REASON = "time to restock"


def restock_due(last_bought_at: datetime, now: datetime, interval_days: int) -> bool:
    """True once `interval_days` have passed since the last purchase (not a moment before)."""
    return utc(now) - utc(last_bought_at) >= timedelta(days=interval_days)


def already_bought(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Drop items the customer has bought, except consumables due for a restock.

    "Bought" means any purchase line with a positive quantity at or before
    `now`; an item that was later returned stays excluded (the customer has
    seen it and sent it back). A consumable is kept, with the reason "time to
    restock", once its category's interval has passed since its last purchase.
    """
    held = ctx.holdings()
    kept = []
    for candidate in candidates:
        holding = held.get(candidate.item_id)
        if holding is None:
            kept.append(candidate)
            continue
        behaviour = ctx.behaviour_of(candidate.item_id)
        if (
            behaviour is not None
            and behaviour.kind == "consumable"
            and behaviour.interval_days is not None
            and restock_due(holding.last_bought_at, ctx.now, behaviour.interval_days)
        ):
            kept.append(replace(candidate, reason=RESTOCK_REASON))
    return kept
