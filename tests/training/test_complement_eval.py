"""Complement precision on hand-built orders: what is shown with an item, and is it bought?"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from recsys.records import Item
from recsys.rules.config import ComplementsConfig, LearnedComplementsConfig
from recsys.rules.learned_complements import Complement, LearnedComplements, learn_complements
from training.complement_eval import best_sellers, co_occurrence, complement_precision

T0 = datetime(2026, 1, 1)
CATALOG = {
    i: Item(i, name=i, category=c)
    for i, c in (
        ("tv", "electronics/tv"),
        ("mount", "electronics/tv-mounts"),
        ("mount-b", "electronics/tv-mounts"),
        ("bread", "grocery/bread"),
        ("jam", "grocery/jam"),
        ("milk", "grocery/milk"),
    )
}
CONFIG = ComplementsConfig(map={"electronics/tv": ("electronics/tv-mounts",)})


def frame(rows: list[tuple[str, str, str, int]]) -> pl.DataFrame:
    """(customer, order, item, day) lines, one unit each."""
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "order_id": [r[1] for r in rows],
            "item_id": [r[2] for r in rows],
            "quantity": [1.0] * len(rows),
            "purchased_at": [T0 + timedelta(days=r[3]) for r in rows],
        }
    )


# Train: milk is the best seller; bread goes with jam; TVs with the "mount" model.
TRAIN = frame(
    [(f"m{i}", f"om{i}", "milk", 1) for i in range(10)]
    + [(f"b{i}", f"ob{i}", item, 2) for i in range(6) for item in ("bread", "jam")]
    + [(f"b{i}", f"ob{i}", "milk", 2) for i in range(2)]
    + [(f"t{i}", f"ot{i}", item, 3) for i in range(4) for item in ("tv", "mount")]
)


def test_baselines_are_counts() -> None:
    assert best_sellers(TRAIN, 2) == ["milk", "bread"]
    together = co_occurrence(TRAIN, 3)
    assert together["bread"] == ["jam", "milk"]
    assert together["tv"] == ["mount"]


def test_precision_counts_the_same_order_and_the_next_one() -> None:
    learned = LearnedComplements(
        {"bread": (Complement("jam", 3.0, 6),), "jam": (Complement("bread", 3.0, 6),)}
    )
    test = frame(
        [
            ("x", "1", "bread", 40),  # jam comes in the next order: a hit
            ("x", "2", "jam", 45),  # bread never comes again: a miss for this anchor
            ("y", "3", "bread", 41),  # y buys milk, not jam: complements miss, popular hits
            ("y", "3", "milk", 41),
            ("z", "4", "tv", 42),  # shown: "mount" (learned for this TV) first, then mount-b
            ("z", "4", "mount", 42),
        ]
    )
    learned = LearnedComplements({**learned.by_item, "tv": (Complement("mount", 5.0, 4),)})
    result = complement_precision(TRAIN, test, CATALOG, learned, CONFIG, k=2)
    assert result.orders == 4
    learned_only = result.scores["learned"]
    assert learned_only.anchors == 3  # bread (x), jam (x), bread (y); milk shows nothing
    assert learned_only.methods["complements"].hit_rate == pytest.approx(1 / 3)
    assert learned_only.methods["complements"].precision == pytest.approx(1 / 3)
    assert learned_only.methods["popular"].hit_rate == pytest.approx(1 / 3)  # milk for y
    configured = result.scores["configured"]
    assert configured.anchors == 1
    # 2 shown (mount, mount-b), 1 bought
    assert configured.methods["complements"].precision == pytest.approx(0.5)
    assert configured.methods["complements"].hit_rate == 1.0
    assert result.scores["all"].anchors == 4
    assert ("bread", "jam", 3.0, 6) in result.top_pairs or ("jam", "bread", 3.0, 6) in (
        result.top_pairs
    )
    assert len(result.top_pairs) == 2  # bread-jam once, tv-mount once


def test_learned_complements_beat_popularity_on_planted_pairs() -> None:
    # Each customer's order pairs a bread with the jam that goes with it (or a TV with
    # its mount); milk, the best seller, is bought on its own by others. Learned on the
    # first 60 days, measured on the next 30.
    rows = []
    for c in range(60):
        pair = ("bread", "jam") if c % 2 == 0 else ("tv", "mount")
        for month in range(3):
            rows += [(f"c{c}", f"{c}-{month}", item, 30 * month) for item in pair]
    rows += [(f"m{c}", f"m{c}-{m}", "milk", 30 * m) for c in range(100) for m in range(3)]
    lines = frame(rows)
    cut = T0 + timedelta(days=60)
    train = lines.filter(pl.col("purchased_at") < cut)
    test = lines.filter(pl.col("purchased_at") >= cut)
    learned = learn_complements(
        train, LearnedComplementsConfig(min_support=3, min_lift=1.2, max_p_value=0.01)
    )
    result = complement_precision(train, test, CATALOG, learned, CONFIG, k=1)
    scores = result.scores["all"].methods
    assert scores["complements"].hit_rate > scores["popular"].hit_rate


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        complement_precision(TRAIN, TRAIN, CATALOG, LearnedComplements(), CONFIG, k=0)
