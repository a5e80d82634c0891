from __future__ import annotations

from recsys.rules import Candidate, LearnedComplements, complement_boost
from recsys.rules.boost import boosted

from ._data import buy, cands, ctx, ids


def test_complements_of_a_recent_purchase_are_boosted_with_a_reason() -> None:
    candidates = cands("novel", "mug", "cookbook", "mount")  # scores 4, 3, 2, 1
    result = complement_boost(candidates, ctx([buy("tv-55", 3)]))
    assert ids(result) == ["novel", "mug", "cookbook", "mount"]
    mount = result[-1]
    assert mount.score == 1.5
    assert mount.reason == 'complements TV 55" Zentro you bought'


def test_boost_reorders_and_basket_anchors_come_first() -> None:
    candidates = [Candidate("novel", 1.0), Candidate("helmet", 0.9), Candidate("mount", 0.8)]
    result = complement_boost(candidates, ctx([buy("tv-55", 3)], basket=["bike"]))
    assert ids(result) == ["helmet", "mount", "novel"]
    assert result[0].reason == "complements City bike in your basket"


def test_old_and_returned_purchases_do_not_anchor() -> None:
    old = ctx([buy("tv-55", 181)])
    assert complement_boost(cands("mount"), old)[0].reason is None
    returned = ctx([buy("tv-55", 3), buy("tv-55", 2, quantity=-1)])
    assert complement_boost(cands("mount"), returned)[0].reason is None


def test_learned_complements_anchor_too() -> None:
    learned = LearnedComplements.from_dict(
        {"mug": [{"item_id": "coffee", "lift": 4.0, "support": 9}]}
    )
    candidates = [Candidate("novel", 1.0), Candidate("coffee", 0.9)]
    result = complement_boost(candidates, ctx([buy("mug", 1)], complements=learned))
    assert ids(result) == ["coffee", "novel"]
    assert result[0].reason == "complements Mug you bought"


def test_an_existing_reason_is_kept() -> None:
    candidate = Candidate("mount", 1.0, "time to restock")
    assert complement_boost([candidate], ctx([buy("tv-55", 3)]))[0].reason == "time to restock"


def test_boost_never_lowers_a_score() -> None:
    assert boosted(2.0, 1.5) == 3.0
    assert boosted(-3.0, 1.5) == -2.0
    assert boosted(0.0, 2.0) == 0.0
