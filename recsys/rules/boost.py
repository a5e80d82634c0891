"""Complement boost: cross-sell what goes with what the customer just bought or is buying."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from recsys.records import Item
from recsys.rules._time import utc
from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.complements import complementary_categories
from recsys.rules.hierarchy import ancestors, under_any


@dataclass(frozen=True, slots=True)
class _Anchor:
    """An item that makes its complements worth showing, and how to say so."""

    item: Item
    phrase: str
    learned: frozenset[str]
    categories: tuple[str, ...]


def boosted(score: float, factor: float) -> float:
    """`score` raised by `factor` (>= 1): multiplied when >= 0, divided when negative.

    Model scores (ALS dot products) can be negative; multiplying those would
    push a complement down, so the boost is always toward +infinity.
    """
    return score * factor if score >= 0 else score / factor


def complement_boost(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Boost complements of the basket and of recent purchases, then re-rank by score.

    A configured category complement is boosted by `complements.boost`, a learned one
    by the smaller `complements.learned_boost`, so the retailer's own pairs rank first.
    Anchors are the basket's items first, then items kept from purchases in the
    last `complements.recent_days`, newest first; the first anchor a candidate
    complements names the reason ("complements TV 55" Zentro you bought"). A
    reason already set by an earlier rule is kept. The sort is stable, so ties
    keep the model's order. No candidate is added or removed.
    """
    index = _anchor_index(ctx)
    if not index:
        return list(candidates)
    config = ctx.config.complements
    result = []
    for candidate in candidates:
        item = ctx.catalog.get(candidate.item_id)
        anchor = index.first(item) if item is not None else None
        if anchor is None:
            result.append(candidate)
            continue
        configured = bool(
            item is not None
            and item.category
            and anchor.categories
            and under_any(item.category, anchor.categories)
        )
        factor = config.boost if configured else config.learned_boost
        result.append(
            replace(
                candidate,
                score=boosted(candidate.score, factor),
                reason=candidate.reason or f"complements {_name(anchor.item)} {anchor.phrase}",
            )
        )
    result.sort(key=lambda c: -c.score)
    return result


def reranks(ctx: RuleContext) -> bool:
    """Whether `complement_boost` re-sorts this customer's candidates (it has anchors)."""
    return bool(_anchor_index(ctx))


def _anchor_index(ctx: RuleContext) -> _AnchorIndex:
    return ctx.memo("complement_anchors", lambda: _AnchorIndex(_anchors(ctx)))


def _anchors(ctx: RuleContext) -> list[_Anchor]:
    config = ctx.config.complements
    found: dict[str, _Anchor] = {}

    def add(item_id: str, phrase: str) -> None:
        item = ctx.catalog.get(item_id)
        if item is None or item_id in found:
            return
        learned = ctx.complements.item_id_set(item_id)
        categories = complementary_categories(item.category, config)
        if learned or categories:
            found[item_id] = _Anchor(item, phrase, learned, categories)

    for item_id in ctx.basket:
        add(item_id, "in your basket")
    since = utc(ctx.now) - timedelta(days=config.recent_days)
    recent = [h for h in ctx.holdings().values() if h.kept]
    recent = [h for h in recent if h.last_bought_at > since]
    recent.sort(key=lambda h: (h.last_bought_at, h.item_id), reverse=True)
    for holding in recent:
        add(holding.item_id, "you bought")
    return list(found.values())


class _AnchorIndex:
    """`_first_anchor` answered from two lookups instead of a scan over every anchor.

    This rule runs on every candidate of every list, so it is worth the bookkeeping.
    """

    def __init__(self, anchors: Sequence[_Anchor]) -> None:
        self._anchors = anchors
        self._anchor_ids = {anchor.item.item_id for anchor in anchors}
        self._by_learned: dict[str, int] = {}
        self._by_scope: dict[str, int] = {}
        for position, anchor in enumerate(anchors):
            for item_id in anchor.learned:
                self._by_learned.setdefault(item_id, position)
            for scope in anchor.categories:
                self._by_scope.setdefault(scope, position)

    def __bool__(self) -> bool:
        return bool(self._anchors)

    def first(self, item: Item) -> _Anchor | None:
        if item.item_id in self._anchor_ids:
            # An anchor never complements itself: the plain scan handles that rare case.
            return _first_anchor(item, self._anchors)
        best = self._by_learned.get(item.item_id)
        if item.category and self._by_scope:
            for scope in ancestors(item.category):
                position = self._by_scope.get(scope)
                if position is not None and (best is None or position < best):
                    best = position
        return self._anchors[best] if best is not None else None


def _first_anchor(item: Item, anchors: Sequence[_Anchor]) -> _Anchor | None:
    for anchor in anchors:
        if item.item_id == anchor.item.item_id:
            continue
        if item.item_id in anchor.learned:
            return anchor
        if item.category and anchor.categories and under_any(item.category, anchor.categories):
            return anchor
    return None


def _name(item: Item) -> str:
    return item.name or item.item_id
