from __future__ import annotations

from collections.abc import Sequence

from recsys.records import ScoredItem
from recsys.rules import (
    DEFAULT_RULES,
    Candidate,
    RuleContext,
    candidates_from_scored,
    run_pipeline,
)

from ._data import buy, cands, ctx, ids


def test_the_tv_complaint_is_fixed() -> None:
    """A week after buying a TV: no TV, the mount and cable instead, with reasons."""
    history = [buy("tv-55", 7)]
    candidates = cands("tv-43", "tv-65", "tv-55", "novel", "mount", "fridge", "hdmi")
    offers = run_pipeline(candidates, ctx(history), limit=3)
    # Boosted x1.5: mount 3 -> 4.5 passes novel (4); hdmi 1 -> 1.5 does not.
    assert ids(offers.items) == ["mount", "novel", "hdmi"]
    assert offers.items[0].reason == 'complements TV 55" Zentro you bought'
    assert offers.items[1].reason == "picked for you"
    assert offers.items[2].reason == 'complements TV 55" Zentro you bought'
    assert offers.removed == {
        "eligibility": 1,
        "already_bought": 1,
        "durable_cooldown": 2,
        "basket_exclusion": 0,
        "complement_boost": 0,
        "dedupe": 0,
    }
    assert offers.n_fillers == 0


def test_fillers_top_up_through_the_same_rules() -> None:
    fillers = cands("tv-43", "mug", "novel", "fridge", "cookbook", source="popular")
    offers = run_pipeline(cands("novel", "novel"), ctx([buy("tv-55", 7)]), limit=3, fillers=fillers)
    assert ids(offers.items) == ["novel", "mug", "cookbook"]
    assert offers.n_fillers == 2
    assert [c.reason for c in offers.items[1:]] == ["popular right now"] * 2
    assert offers.removed["durable_cooldown"] == 1  # the filler TV
    assert offers.removed["eligibility"] == 1  # the out-of-stock filler fridge
    assert offers.removed["dedupe"] == 1


def test_fillers_are_unused_when_the_model_fills_the_list() -> None:
    offers = run_pipeline(cands("mug", "novel", "cookbook"), ctx(), limit=2, fillers=cands("bag"))
    assert ids(offers.items) == ["mug", "novel"]
    assert offers.removed["limit"] == 1
    assert offers.n_fillers == 0


def test_cross_sell_for_a_basket() -> None:
    candidates = cands("tv-43", "bike", "lock", "helmet", "mug")
    offers = run_pipeline(candidates, ctx(basket=["bike"], placement="order_confirmation"), limit=4)
    # The bike leaves (in the basket); its lock and helmet are boosted x1.5.
    assert ids(offers.items) == ["tv-43", "lock", "helmet", "mug"]
    assert [c.score for c in offers.items] == [5.0, 4.5, 3.0, 1.0]


def test_limit_zero_and_no_candidates() -> None:
    assert run_pipeline(cands("mug"), ctx(), limit=0).items == ()
    assert run_pipeline([], ctx(), limit=4).items == ()


def test_guarantees_hold_without_the_dedupe_rule() -> None:
    offers = run_pipeline(cands("mug", "mug", "novel"), ctx(), rules=[], limit=5)
    assert ids(offers.items) == ["mug", "novel"]


def test_custom_rules_are_plain_callables() -> None:
    def no_books(candidates: Sequence[Candidate], context: RuleContext) -> list[Candidate]:
        return [
            c for c in candidates if not (context.category_of(c.item_id) or "").startswith("books")
        ]

    offers = run_pipeline(cands("novel", "mug"), ctx(), rules=[*DEFAULT_RULES, no_books])
    assert ids(offers.items) == ["mug"]
    assert offers.removed["no_books"] == 1


def test_model_output_converts_to_candidates() -> None:
    assert candidates_from_scored([ScoredItem("a", 0.5)]) == [Candidate("a", 0.5, None, "model")]
