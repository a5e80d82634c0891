from __future__ import annotations

from recsys.rules import basket_exclusion

from ._data import cands, ctx, ids


def test_basket_items_and_their_durable_categories_are_excluded() -> None:
    result = basket_exclusion(
        cands("tv-55", "tv-43", "mount", "coffee", "coffee-dark", "novel"),
        ctx(basket=["tv-55", "coffee", "ghost"]),
    )
    # TVs are durable: the other TV goes; capsules are consumable: the other pack stays.
    assert ids(result) == ["mount", "coffee-dark", "novel"]


def test_empty_basket_changes_nothing() -> None:
    assert ids(basket_exclusion(cands("tv-55", "mug"), ctx())) == ["tv-55", "mug"]
