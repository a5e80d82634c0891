"""Basket exclusion: never offer what is being bought, nor a substitute for a durable in it."""

from __future__ import annotations

from collections.abc import Sequence

from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.hierarchy import under_any


def basket_scopes(ctx: RuleContext) -> list[str]:
    """Durable category scopes of the basket's items (unknown items are ignored)."""
    scopes = []
    for item_id in ctx.basket:
        behaviour = ctx.behaviour_of(item_id)
        if behaviour is not None and behaviour.kind == "durable":
            scopes.append(behaviour.category)
    return scopes


def basket_exclusion(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Drop the basket's items and anything in a durable category of a basket item.

    Unlike the cooldown this needs no purchase record: it covers the order
    confirmation e-mail, rendered before the order may have reached the store.
    """
    if not ctx.basket:
        return list(candidates)
    basket = set(ctx.basket)
    scopes = basket_scopes(ctx)
    kept = []
    for candidate in candidates:
        if candidate.item_id in basket:
            continue
        category = ctx.category_of(candidate.item_id)
        if scopes and category and under_any(category, scopes):
            continue
        kept.append(candidate)
    return kept
