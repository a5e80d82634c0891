"""Eligibility: only in-stock catalog items that neither the rules file nor the request excludes."""

from __future__ import annotations

from collections.abc import Sequence

from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.hierarchy import under_any


def eligibility(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Drop unknown items, out-of-stock items, `[eligibility]` exclusions and what the
    request filters out (`ctx.exclude_items`; outside `ctx.categories` when it has any).

    An item missing from the catalog is dropped rather than trusted: the
    response needs its name, price and link, and stock cannot be checked.
    """
    excluded_items = set(ctx.config.eligibility.exclude_items) | ctx.exclude_items
    excluded_categories = ctx.config.eligibility.exclude_categories
    wanted = ctx.categories
    catalog = ctx.catalog
    kept = []
    for candidate in candidates:
        item = catalog.get(candidate.item_id)
        if item is None or not item.in_stock or item.item_id in excluded_items:
            continue
        if excluded_categories and item.category and under_any(item.category, excluded_categories):
            continue
        if wanted and not (item.category and under_any(item.category, wanted)):
            continue
        kept.append(candidate)
    return kept
