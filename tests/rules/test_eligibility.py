from __future__ import annotations

from dataclasses import replace

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


def test_the_request_excludes_items_and_keeps_to_its_categories_on_level_boundaries() -> None:
    every = cands("tv-55", "tv-65", "mount", "hdmi", "mug", "socks", "novel")
    excluded = replace(ctx(), exclude_items=frozenset({"mug", "tv-65", "ghost"}))
    assert ids(eligibility(every, excluded)) == ["tv-55", "mount", "hdmi", "socks", "novel"]
    # `electronics/tv` covers the OLED TV and itself, never its sibling `electronics/tv-mounts`;
    # an item without a category is outside every category.
    tvs = replace(ctx(), categories=("electronics/tv",))
    assert ids(eligibility(every, tvs)) == ["tv-55", "tv-65"]
    several = replace(
        ctx(), categories=("electronics/tv", "books"), exclude_items=frozenset({"tv-55"})
    )
    assert ids(eligibility(every, several)) == ["tv-65", "novel"]
