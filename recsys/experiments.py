"""Who is in the control group, a campaign holdout, or which variant of an experiment.

Every assignment is a pure function of a salt and the customer id: a keyed
BLAKE2b hash read as a number in [0, 1). It never depends on the process (no
`hash()` randomisation), the order customers arrive in, or a stored table, so
every worker, the campaign job and a rerun next month agree, and changing the
salt reshuffles everyone at once.

The three draws use different salts so that they are independent: being in the
global control group says nothing about the variant one would have had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from recsys.rules.config import (
    ControlConfig,
    ExperimentConfig,
    RulesConfig,
    RulesConfigError,
    VariantConfig,
    variant_rules,
)

_SCALE = float(2**64)

#: Why a customer got no marketing: the global control group, or a campaign's holdout.
CONTROL_GROUP = "control_group"
HOLDOUT = "holdout"


def bucket(salt: str, customer_id: str) -> float:
    """A uniform number in [0, 1) fixed by `salt` and `customer_id`."""
    digest = hashlib.blake2b(f"{salt}\x00{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def in_control_group(customer_id: str, control: ControlConfig) -> bool:
    """The global control group: no marketing placement, no campaign offer."""
    return control.share > 0 and bucket(control.salt, customer_id) < control.share


def campaign_holdout(customer_id: str, campaign: str, control: ControlConfig) -> str | None:
    """Why `customer_id` is held out of `campaign` (CONTROL_GROUP or HOLDOUT), or None."""
    if in_control_group(customer_id, control):
        return CONTROL_GROUP
    share = control.holdouts.get(campaign, 0.0)
    if share > 0 and bucket(f"{control.salt}:{campaign}", customer_id) < share:
        return HOLDOUT
    return None


def assign_variant(customer_id: str, experiment: ExperimentConfig) -> VariantConfig:
    """The variant of `experiment` for `customer_id`: cumulative shares over one draw."""
    draw = bucket(experiment.hash_salt, customer_id)
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.share
        if draw < cumulative:
            return variant
    return experiment.variants[-1]  # shares sum to 1 within rounding


def check_model_versions(rules: RulesConfig, known: Iterable[str]) -> None:
    """Raise RulesConfigError when a variant names a model version that is not saved."""
    available = set(known)
    problems = []
    for i, experiment in enumerate(rules.experiments):
        for j, variant in enumerate(experiment.variants):
            if variant.model_version is not None and variant.model_version not in available:
                listed = ", ".join(sorted(available)) or "none saved"
                problems.append(
                    f"experiments[{i}].variants[{j}].model_version: unknown model version "
                    f"{variant.model_version!r}; known: {listed}"
                )
    if problems:
        raise RulesConfigError(None, problems)


@dataclass(frozen=True, slots=True)
class Arm:
    """What one customer gets on one placement: the experiment and variant, if any."""

    experiment: str | None = None
    variant: str | None = None
    rules: RulesConfig | None = None  # None: the base rules
    model_version: str | None = None  # None: the current model
    voucher_percent: int | None = None


NO_ARM = Arm()


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    """The experiments of one rules file, with each variant's rules resolved once."""

    rules: RulesConfig
    by_placement: Mapping[str, ExperimentConfig] = field(default_factory=dict)
    variant_rules: Mapping[tuple[str, str], RulesConfig] = field(default_factory=dict)

    @classmethod
    def from_rules(cls, rules: RulesConfig) -> ExperimentPlan:
        resolved = {
            (e.name, v.name): variant_rules(rules, v)
            for e in rules.experiments
            for v in e.variants
            if v.rules
        }
        return cls(rules, {e.placement: e for e in rules.experiments}, resolved)

    def arm(self, customer_id: str | None, placement: str) -> Arm:
        experiment = self.by_placement.get(placement)
        if experiment is None or customer_id is None:
            return NO_ARM
        variant = assign_variant(customer_id, experiment)
        return Arm(
            experiment.name,
            variant.name,
            self.variant_rules.get((experiment.name, variant.name)),
            variant.model_version,
            variant.voucher_percent,
        )

    @property
    def model_versions(self) -> set[str]:
        return {
            v.model_version
            for e in self.rules.experiments
            for v in e.variants
            if v.model_version is not None
        }
