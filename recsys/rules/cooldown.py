"""Durable cooldown: after buying a TV, no TV (nor any other substitute) for a while."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from recsys.records import Item, Purchase
from recsys.rules._time import utc
from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.categories import CategoryBehaviour, behaviour_key, resolve_item_behaviour
from recsys.rules.config import CategoriesConfig
from recsys.rules.hierarchy import ancestors
from recsys.rules.history import Holding, holdings


def in_cooldown(last_purchase: datetime, now: datetime, cooldown_days: int) -> bool:
    """True while fewer than `cooldown_days` have passed since `last_purchase`."""
    return utc(now) - utc(last_purchase) < timedelta(days=cooldown_days)


def durable_blocks(
    purchases: Sequence[Purchase],
    catalog: Mapping[str, Item],
    behaviours: Mapping[str, CategoryBehaviour],
    config: CategoriesConfig,
    now: datetime,
    held: Mapping[str, Holding] | None = None,
    resolve: Callable[[str], CategoryBehaviour | None] | None = None,
) -> dict[str, datetime]:
    """Blocked durable scopes -> the UTC instant each block ends (exclusive).

    A scope is the category level whose behaviour made the item durable
    (`electronics/tv` for an override on it), and it blocks everything under
    it. `resolve` (default: `resolve_item_behaviour` with `behaviours` and `config`) maps an
    item id to its behaviour. Only a kept item blocks: a durable returned in full leaves the
    customer still needing one. The block runs from the item's last purchase.
    """
    blocks: dict[str, datetime] = {}
    if held is None:
        held = holdings(purchases, now)
    for holding in held.values():
        item = catalog.get(holding.item_id)
        if item is None or not holding.kept:
            continue
        behaviour = (
            resolve(item.item_id)
            if resolve is not None
            else resolve_item_behaviour(item.item_id, item.category, behaviours, config)
        )
        if behaviour is None or behaviour.kind != "durable" or behaviour.cooldown_days is None:
            continue
        if not in_cooldown(holding.last_bought_at, now, behaviour.cooldown_days):
            continue
        until = holding.last_bought_at + timedelta(days=behaviour.cooldown_days)
        if behaviour.category not in blocks or until > blocks[behaviour.category]:
            blocks[behaviour.category] = until
    return blocks


def durable_cooldown(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Drop every candidate in a durable category the customer bought in within its cooldown."""
    scopes = ctx.memo(
        "durable_blocks",
        lambda: durable_blocks(
            ctx.purchases,
            ctx.catalog,
            ctx.behaviours,
            ctx.config.categories,
            ctx.now,
            ctx.holdings(),
            ctx.behaviour_of,
        ),
    )
    if not scopes:
        return list(candidates)
    kept = []
    for candidate in candidates:
        scope = behaviour_key(candidate.item_id, ctx.category_of(candidate.item_id))
        # "under any blocked scope" == one of the category's ancestors is blocked
        if not scopes.keys().isdisjoint(ancestors(scope)):
            continue
        kept.append(candidate)
    return kept
