from __future__ import annotations

from datetime import timedelta

from recsys.rules import CategoryBehaviour, durable_blocks, durable_cooldown
from recsys.rules.cooldown import in_cooldown

from ._data import CATALOG, NOW, SHIPPED, buy, cands, ctx, ids


def test_a_tv_purchase_blocks_every_tv_but_not_accessories() -> None:
    history = [buy("tv-55", 7)]  # electronics/tv/oled, durable via the electronics/tv override
    result = durable_cooldown(
        cands("tv-43", "tv-65", "tv-55", "mount", "hdmi", "bike"), ctx(history)
    )
    assert ids(result) == ["mount", "hdmi", "bike"]


def test_block_ends_with_the_cooldown() -> None:
    history = [buy("tv-55", 730)]
    assert ids(durable_cooldown(cands("tv-43"), ctx(history))) == ["tv-43"]
    inside = ctx(history, now=NOW - timedelta(seconds=1))
    assert durable_cooldown(cands("tv-43"), inside) == []


def test_a_fully_returned_durable_does_not_block() -> None:
    history = [buy("tv-55", 20), buy("tv-55", 15, quantity=-1)]
    assert ids(durable_cooldown(cands("tv-43"), ctx(history))) == ["tv-43"]
    partly = [buy("tv-55", 20, quantity=2), buy("tv-55", 15, quantity=-1)]
    assert durable_cooldown(cands("tv-43"), ctx(partly)) == []


def test_learned_durables_block_their_own_category() -> None:
    learned = {"books/fiction": CategoryBehaviour("books/fiction", "durable", 80, 0.01)}
    result = durable_cooldown(
        cands("novel", "cookbook"), ctx([buy("novel", 100)], behaviours=learned)
    )
    assert ids(result) == ["cookbook"]


def test_blocks_report_scope_and_end() -> None:
    blocks = durable_blocks(
        [buy("bike", 10), buy("novel", 1)], CATALOG, {}, SHIPPED.categories, NOW
    )
    assert blocks == {"sports/bicycles": NOW - timedelta(days=10) + timedelta(days=730)}


def test_in_cooldown_is_monotone_in_now() -> None:
    bought = NOW - timedelta(days=100)
    states = [in_cooldown(bought, NOW + timedelta(days=d), 365) for d in range(0, 400, 5)]
    assert states == sorted(states, reverse=True)
