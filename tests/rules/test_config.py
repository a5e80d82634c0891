from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from recsys.rules import DEFAULT_RULES_PATH, RulesConfig, RulesConfigError, load_rules, parse_rules
from recsys.rules.config import key_path


def _without_demo_lists(config: RulesConfig) -> RulesConfig:
    return config.model_copy(
        update={
            "complements": config.complements.model_copy(update={"map": {}}),
            "categories": config.categories.model_copy(update={"overrides": {}}),
        }
    )


def _problems(data: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(RulesConfigError) as caught:
        parse_rules(data)
    return caught.value.problems


def test_shipped_file_loads_and_matches_the_code_defaults() -> None:
    shipped = load_rules(None)
    assert shipped == load_rules(DEFAULT_RULES_PATH)
    # Every knob in the file is the code default; only the demo's category
    # lists (empty by default) differ.
    assert _without_demo_lists(shipped) == RulesConfig()


def test_shipped_file_carries_the_demo_retailer_categories() -> None:
    shipped = load_rules(None)
    overrides = shipped.categories.overrides
    durables = {"electronics/tv", "sports/bicycles", "appliances/fridges", "electronics/laptops"}
    consumables = {
        "grocery/coffee-capsules",
        "office/printer-ink",
        "pets/pet-food",
        "home/water-filters",
    }
    assert {c for c, o in overrides.items() if o.kind == "durable"} == durables
    assert {c for c, o in overrides.items() if o.kind == "consumable"} == consumables
    assert shipped.complements.map["electronics/tv"] == (
        "electronics/tv-mounts",
        "electronics/hdmi-cables",
    )
    assert shipped.complements.map["sports/bicycles"] == ("sports/helmets", "sports/bike-locks")
    assert shipped.complements.map["electronics/laptops"] == ("electronics/laptop-bags",)
    tiers = [(t.name, t.min_spend, t.anniversary_voucher_percent) for t in shipped.loyalty.tiers]
    assert tiers == [
        ("Member", 0, 5),
        ("Silver", 250, 10),
        ("Gold", 1000, 15),
        ("Platinum", 3000, 20),
    ]


def _keys(model: type[BaseModel]) -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation)
    return keys


def test_shipped_file_mentions_every_key() -> None:
    from recsys.rules.config import CategoryOverride, TierConfig

    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    keys = _keys(RulesConfig) | _keys(CategoryOverride) | _keys(TierConfig)
    missing = {key for key in keys if not re.search(rf"\b{re.escape(key)}\b", text)}
    assert missing == set()


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("", encoding="utf-8")
    assert load_rules(path) == RulesConfig()


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[contact]\nmax_offers = 2\n", encoding="utf-8")
    config = load_rules(path)
    assert config.contact.max_offers == 2
    assert config.contact.period_days == 7
    assert config.loyalty == RulesConfig().loyalty


def test_tiers_out_of_order_name_the_key_path() -> None:
    tiers = [
        {"name": "A", "min_spend": 0},
        {"name": "B", "min_spend": 100},
        {"name": "C", "min_spend": 50},
    ]
    assert _problems({"loyalty": {"tiers": tiers}}) == (
        "loyalty.tiers[2].min_spend: tiers must be in increasing order",
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"contact": {"max_ofers": 1}}, "contact.max_ofers: unknown key"),
        ({"unknown": {}}, "unknown: unknown key"),
        ({"loyalty": {"window_days": 0}}, "loyalty.window_days: Input should be greater than"),
        ({"loyalty": {"tiers": []}}, "loyalty.tiers: "),
        (
            {"loyalty": {"tiers": [{"name": "A", "min_spend": 10}]}},
            "loyalty.tiers[0].min_spend: the first tier must need no spend and no orders",
        ),
        (
            {"loyalty": {"tiers": [{"name": "A", "min_spend": 0}, {"name": "A", "min_spend": 5}]}},
            "loyalty.tiers[1].name: duplicate tier name 'A'",
        ),
        (
            {
                "loyalty": {
                    "tiers": [
                        {"name": "A", "min_spend": 0},
                        {"name": "B", "min_spend": 5, "min_orders": 3},
                        {"name": "C", "min_spend": 9, "min_orders": 2},
                    ]
                }
            },
            "loyalty.tiers[2].min_orders: min_orders must not decrease",
        ),
        (
            {"loyalty": {"tiers": [{"name": "A"}]}},
            "loyalty.tiers[0].min_spend: required key is missing",
        ),
        (
            {
                "loyalty": {
                    "tiers": [{"name": "A", "min_spend": 0, "birthday_voucher_percent": 101}]
                }
            },
            "loyalty.tiers[0].birthday_voucher_percent: Input should be less than or equal to 100",
        ),
        (
            {"categories": {"overrides": {"electronics/tv": {"class": "consumable"}}}},
            'categories.overrides."electronics/tv".interval_days: required when class is',
        ),
        (
            {"categories": {"overrides": {"books": {"class": "regular", "cooldown_days": 3}}}},
            "categories.overrides.books.cooldown_days: only a durable has a cooldown",
        ),
        (
            {"categories": {"overrides": {"books": {"class": "durable", "interval_days": 3}}}},
            "categories.overrides.books.interval_days: only a consumable has a repurchase interval",
        ),
        (
            {"categories": {"overrides": {"books": {"class": "fragile"}}}},
            "categories.overrides.books.class: Input should be",
        ),
        (
            {"categories": {"overrides": {"a//b": {"class": "regular"}}}},
            "categories.overrides.\"a//b\": category 'a//b' has an empty level",
        ),
        (
            {"categories": {"durable_max_repeat_rate": 0.5, "consumable_min_repeat_rate": 0.2}},
            "categories.consumable_min_repeat_rate: must be at least durable_max_repeat_rate",
        ),
        (
            {"complements": {"map": {"electronics/tv": ["electronics/tv/oled"]}}},
            "complements.map.\"electronics/tv\"[0]: 'electronics/tv/oled' overlaps",
        ),
        ({"complements": {"boost": 0.5}}, "complements.boost: Input should be greater than"),
        (
            {"contact": {"marketing_placements": ["newsleter"]}},
            "contact.marketing_placements[0]: unknown placement 'newsleter'",
        ),
        ({"candidates": {"pool_size": 0}}, "candidates.pool_size: Input should be greater than"),
        (
            {"eligibility": {"exclude_categories": ["gift-cards/"]}},
            "eligibility.exclude_categories[0]: category 'gift-cards/' has an empty level",
        ),
    ],
)
def test_errors_name_the_key_path(data: dict[str, Any], expected: str) -> None:
    problems = _problems(data)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    problems = _problems({"contact": {"max_ofers": 1, "period_days": 0}, "candidates": {"x": 1}})
    assert len(problems) == 3


def test_unreadable_and_malformed_files_raise_the_typed_error(tmp_path: Path) -> None:
    with pytest.raises(RulesConfigError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[contact\nmax_offers = 1\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match=r"not valid TOML.*line 1") as caught:
        load_rules(bad)
    assert caught.value.source == bad
    assert isinstance(caught.value, ValueError)


def test_config_is_frozen() -> None:
    config = RulesConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.contact.max_offers = 3


def test_key_path_quotes_keys_toml_would_quote() -> None:
    assert key_path(("a", "b/c", 2, "d")) == 'a."b/c"[2].d'
