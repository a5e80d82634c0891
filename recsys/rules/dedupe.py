"""Dedupe: one entry per item, the first (best-ranked) one wins."""

from __future__ import annotations

from collections.abc import Sequence

from recsys.rules.candidates import Candidate, RuleContext


def first_of_each(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The first occurrence of each item_id, order kept."""
    seen: set[str] = set()
    kept = []
    for candidate in candidates:
        if candidate.item_id not in seen:
            seen.add(candidate.item_id)
            kept.append(candidate)
    return kept


def dedupe(candidates: Sequence[Candidate], ctx: RuleContext) -> list[Candidate]:
    """Keep the first occurrence of each item_id; producers may propose an item twice."""
    return first_of_each(candidates)
