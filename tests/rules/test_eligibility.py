from __future__ import annotations

from recsys.rules import eligibility, parse_rules

from ._data import cands, ctx, ids


def test_drops_unknown_and_out_of_stock_items() -> None:
    assert ids(eligibility(cands("tv-55", "fridge", "ghost", "mug"), ctx())) == ["tv-55", "mug"]


def test_drops_configured_exclusions_hierarchically() -> None:
    config = parse_rules(
        {"eligibility": {"exclude_items": ["mug"], "exclude_categories": ["electronics/tv"]}}
    )
    result = eligibility(cands("tv-55", "tv-65", "mount", "mug", "novel"), ctx(config=config))
    assert ids(result) == ["mount", "novel"]
