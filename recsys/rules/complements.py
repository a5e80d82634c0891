"""Complementary products: the configured category map plus learned co-purchases.

The map is hierarchical on both sides: a rule for `electronics/tv` applies to
an anchor in `electronics/tv/oled`, and a target `electronics/hdmi-cables`
covers `electronics/hdmi-cables/4k`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recsys.records import Item
from recsys.rules.candidates import Candidate
from recsys.rules.config import ComplementsConfig
from recsys.rules.hierarchy import ancestors, under_any
from recsys.rules.learned_complements import (
    Complement,
    LearnedComplements,
    learn_complements,
)

__all__ = [
    "Complement",
    "LearnedComplements",
    "complementary_categories",
    "complements_for",
    "is_complement",
    "learn_complements",
]


def complementary_categories(category: str | None, config: ComplementsConfig) -> tuple[str, ...]:
    """Categories that complement `category`, from the map entries at it and above it."""
    if not category:
        return ()
    found: dict[str, None] = {}
    for level in ancestors(category):
        for target in config.map.get(level, ()):
            found.setdefault(target)
    return tuple(found)


def is_complement(
    anchor: Item,
    candidate: Item,
    learned: LearnedComplements,
    config: ComplementsConfig,
) -> bool:
    """True when `candidate` complements `anchor`, by learned pair or by category map."""
    if candidate.item_id == anchor.item_id:
        return False
    if any(c.item_id == candidate.item_id for c in learned.for_item(anchor.item_id)):
        return True
    targets = complementary_categories(anchor.category, config)
    return bool(candidate.category) and under_any(candidate.category or "", targets)


def complements_for(
    item_ids: Sequence[str],
    catalog: Mapping[str, Item],
    learned: LearnedComplements,
    config: ComplementsConfig,
    popularity: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> list[Candidate]:
    """Items that go with `item_ids`, best first, as pipeline candidates.

    Catalog items in the anchors' complementary categories (the retailer's own map)
    come first: those learned as bought with an anchor in learning's order, then the
    rest by `popularity` (item_id -> any higher-is-better number), then item_id;
    then learned complements, in the order learning ranked them. Anchors themselves
    and ids missing from the catalog are skipped. Scores are rank-based in
    (0, 1] so both kinds share one scale. Stock is not checked here: pass the
    result through `run_pipeline`, whose eligibility rule does that.
    """
    anchors = [catalog[i] for i in dict.fromkeys(item_ids) if i in catalog]
    anchor_ids = {anchor.item_id for anchor in anchors}
    chosen: dict[str, str] = {}  # item_id -> anchor name, in rank order

    by_category: dict[str, str] = {}
    # Within the configured categories, the items bought with this very anchor lead
    # (the mount that fits this TV), then the category's best sellers.
    evidence: dict[str, int] = {}
    for anchor in anchors:
        targets = complementary_categories(anchor.category, config)
        if not targets:
            continue
        for rank, item_id in enumerate(learned.item_ids_for(anchor.item_id)):
            evidence[item_id] = min(rank, evidence.get(item_id, rank))
        for item in catalog.values():
            if (
                item.category
                and item.item_id not in anchor_ids
                and item.item_id not in by_category
                and under_any(item.category, targets)
            ):
                by_category[item.item_id] = _name(anchor)
    weights = popularity or {}
    unranked = len(evidence) + 1
    for item_id in sorted(
        by_category, key=lambda i: (evidence.get(i, unranked), -weights.get(i, 0.0), i)
    ):
        chosen[item_id] = by_category[item_id]

    # Learned pairs come after the configured ones; among themselves, in the order
    # learning ranked them (strongest evidence first), the best rank over the anchors.
    best_rank: dict[str, tuple[int, str]] = {}
    for anchor in anchors:
        for rank, complement in enumerate(learned.for_item(anchor.item_id)):
            if (
                complement.item_id in anchor_ids
                or complement.item_id not in catalog
                or complement.item_id in chosen
            ):
                continue
            current = best_rank.get(complement.item_id)
            if current is None or rank < current[0]:
                best_rank[complement.item_id] = (rank, _name(anchor))
    for item_id, (_, anchor_name) in sorted(best_rank.items(), key=lambda kv: (kv[1][0], kv[0])):
        chosen[item_id] = anchor_name

    ranked = list(chosen.items())
    if limit is not None:
        ranked = ranked[: max(limit, 0)]
    total = max(len(chosen), 1)
    return [
        Candidate(item_id, round(1.0 - rank / total, 6), f"goes with {anchor_name}", "complement")
        for rank, (item_id, anchor_name) in enumerate(ranked)
    ]


def _name(item: Item) -> str:
    return item.name or item.item_id
