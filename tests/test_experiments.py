"""Assignment to the control group, holdouts and variants: stable, fair, and obeyed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.experiments import assign_variant, bucket, campaign_holdout, in_control_group
from recsys.offers import CustomerData, recommend_for_customer
from recsys.records import Customer
from recsys.rules.config import PLACEMENTS, ControlConfig, ExperimentConfig, load_rules

IDS = [f"C{n:07d}" for n in range(100_000)]
EXPERIMENT = ExperimentConfig.model_validate({
    "name": "three-way", "placement": "newsletter",
    "variants": [
        {"name": "a", "share": 0.2}, {"name": "b", "share": 0.3}, {"name": "c", "share": 0.5},
    ],
})
CONTROL = ControlConfig(share=0.05, holdouts={"anniversary": 0.1})

_CHILD = """
import json, sys
from recsys.experiments import assign_variant, campaign_holdout, in_control_group
from recsys.rules.config import ControlConfig, ExperimentConfig
spec = json.loads(sys.argv[1])
experiment = ExperimentConfig.model_validate(spec["experiment"])
control = ControlConfig.model_validate(spec["control"])
print(json.dumps([[in_control_group(c, control), campaign_holdout(c, "anniversary", control),
                   assign_variant(c, experiment).name] for c in spec["ids"]]))
"""


def _assignments(ids: list[str]) -> list[list[Any]]:
    return [
        [in_control_group(c, CONTROL), campaign_holdout(c, "anniversary", CONTROL),
         assign_variant(c, EXPERIMENT).name]
        for c in ids
    ]


def test_assignment_is_the_same_in_another_process_with_another_hash_seed() -> None:
    ids = IDS[:2000]
    spec = {"experiment": EXPERIMENT.model_dump(), "control": CONTROL.model_dump(), "ids": ids}
    for seed in ("1", "12345"):
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(spec)],
            env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True,
            check=True,
        )
        assert json.loads(child.stdout) == _assignments(ids)


def _within(count: int, n: int, share: float) -> bool:
    """`count` of `n` is within 4 standard errors of `share` (a false alarm 1 in 15,000)."""
    return abs(count - n * share) <= 4 * math.sqrt(n * share * (1 - share))


def test_shares_hold_within_sampling_error_on_100k_ids() -> None:
    n = len(IDS)
    control = sum(in_control_group(c, CONTROL) for c in IDS)
    assert _within(control, n, 0.05)
    # The holdout is drawn among the rest, independently: 10% of the 95%.
    holdout = sum(campaign_holdout(c, "anniversary", CONTROL) == "holdout" for c in IDS)
    assert _within(holdout, n, 0.95 * 0.10)
    names = [assign_variant(c, EXPERIMENT).name for c in IDS]
    for variant in EXPERIMENT.variants:
        assert _within(names.count(variant.name), n, variant.share), variant.name
    # Independence: the variant mix inside the control group is the overall mix.
    held = [name for c, name in zip(IDS, names, strict=True) if in_control_group(c, CONTROL)]
    assert _within(held.count("c"), len(held), 0.5)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=20))
def test_bucket_is_uniform_range_and_depends_on_the_salt(customer_id: str, salt: str) -> None:
    value = bucket(salt, customer_id)
    assert 0.0 <= value < 1.0 and bucket(salt, customer_id) == value


# The model is never consulted for a held-out customer: any use of it would raise.
_NO_MODEL: Any = SimpleNamespace(version="v-test")
_RULES = load_rules(None)
_MARKETING = [p for p in PLACEMENTS if p in _RULES.contact.marketing_placements]


@settings(max_examples=300)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=16),
       st.sampled_from(_MARKETING), st.floats(0.01, 0.9))
def test_a_held_out_customer_never_receives_a_marketing_placement_or_campaign_offer(
    customer_id: str, placement: str, share: float
) -> None:
    rules = _RULES.model_copy(update={"control": ControlConfig(share=share)})
    if not in_control_group(customer_id, rules.control):
        return
    offer = recommend_for_customer(
        _NO_MODEL, rules, {}, CustomerData(customer_id, Customer(customer_id, "a@b.c")),
        placement=placement, limit=4, now=datetime(2026, 11, 22, 9),
    )
    assert offer.items == () and offer.suppressed == "held_out"
    # And every campaign holds them out, whatever its own holdout share.
    for campaign in ("anniversary", "birthday"):
        assert campaign_holdout(customer_id, campaign, rules.control) == "control_group"
