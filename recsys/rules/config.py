"""The rules file (`rules.toml`): a typed, frozen, validated `RulesConfig`.

`load_rules(None)` reads the shipped, commented `rules.toml` next to this
module; `load_rules(path)` reads a retailer's own file. Keys a file leaves
out take the defaults below, which match the shipped file key for key, except
the demo retailer's category lists (`complements.map`,
`categories.overrides`): those are empty in code, because a retailer who
writes their own file should get learned behaviour, not the demo's catalogue.

Every problem is reported with the key path that caused it
(`loyalty.tiers[2].min_spend: tiers must be in increasing order`) and raised
as one `RulesConfigError` listing all problems, so a broken file is fixed in
one pass instead of one error at a time.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recsys.rules.hierarchy import category_problem, is_under

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.toml")

#: Every placement a recommendation or offer can be made for. The API accepts the
#: first three (`placement=`); the campaign job uses `anniversary` and `birthday`.
PLACEMENTS: tuple[str, ...] = ("order_confirmation", "newsletter", "anniversary", "birthday")

CategoryClass = Literal["durable", "consumable", "regular"]


class RulesConfigError(ValueError):
    """A rules file that cannot be read, parsed or validated.

    `problems` holds one `key.path: message` line per problem. A subclass of
    `ValueError` so callers that predate it still catch it.
    """

    def __init__(self, source: Path | None, problems: list[str]) -> None:
        self.source = source
        self.problems: tuple[str, ...] = tuple(problems)
        where = f"rules file {source}" if source is not None else "rules"
        super().__init__(f"invalid {where}:\n  " + "\n  ".join(self.problems))


class _KeyPathError(ValueError):
    """A validator's complaint about a key below the one it validates.

    Pydantic only knows the location of the field whose validator raised;
    cross-field checks (tier ordering, override consistency) use this to point
    at the exact key, e.g. `tiers[2].min_spend` instead of just `tiers`.
    """

    def __init__(self, subpath: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.subpath = subpath


class _Section(BaseModel):
    # Unknown keys are errors: a typo such as `max_ofers` must not silently
    # leave the default in force.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- [loyalty] -------------------------------------------------------------------------------


class TierConfig(_Section):
    """One loyalty tier. A customer qualifies when both thresholds are met."""

    name: str = Field(min_length=1)
    min_spend: float = Field(ge=0, description="spend in the window, currency units")
    min_orders: int | None = Field(default=None, ge=0, description="orders in the window")
    benefits: tuple[str, ...] = ()
    anniversary_voucher_percent: int = Field(default=0, ge=0, le=100)
    birthday_voucher_percent: int = Field(default=0, ge=0, le=100)

    @property
    def orders_required(self) -> int:
        return self.min_orders or 0


DEFAULT_TIERS: tuple[TierConfig, ...] = (
    TierConfig(
        name="Member",
        min_spend=0,
        benefits=("Member prices", "Birthday voucher"),
        anniversary_voucher_percent=5,
        birthday_voucher_percent=5,
    ),
    TierConfig(
        name="Silver",
        min_spend=250,
        benefits=("Member prices", "Birthday voucher", "Free standard shipping"),
        anniversary_voucher_percent=10,
        birthday_voucher_percent=10,
    ),
    TierConfig(
        name="Gold",
        min_spend=1000,
        benefits=(
            "Member prices",
            "Birthday voucher",
            "Free express shipping",
            "Early access to sales",
        ),
        anniversary_voucher_percent=15,
        birthday_voucher_percent=15,
    ),
    TierConfig(
        name="Platinum",
        min_spend=3000,
        benefits=(
            "Member prices",
            "Birthday voucher",
            "Free express shipping",
            "Early access to sales",
            "Personal shopping assistant",
        ),
        anniversary_voucher_percent=20,
        birthday_voucher_percent=20,
    ),
)


class LoyaltyConfig(_Section):
    window_days: int = Field(default=365, ge=1, description="trailing qualification window")
    tiers: tuple[TierConfig, ...] = Field(default=DEFAULT_TIERS, min_length=1)

    @field_validator("tiers")
    @classmethod
    def _ordered(cls, tiers: tuple[TierConfig, ...]) -> tuple[TierConfig, ...]:
        # Tiers are a ladder: qualifying for one must imply qualifying for every
        # tier below it, otherwise "tier" and "next tier" stop being meaningful.
        if tiers[0].min_spend != 0 or tiers[0].orders_required != 0:
            raise _KeyPathError((0, "min_spend"), "the first tier must need no spend and no orders")
        seen: set[str] = set()
        for i, tier in enumerate(tiers):
            if tier.name in seen:
                raise _KeyPathError((i, "name"), f"duplicate tier name {tier.name!r}")
            seen.add(tier.name)
            if i == 0:
                continue
            previous = tiers[i - 1]
            if tier.min_spend <= previous.min_spend:
                raise _KeyPathError((i, "min_spend"), "tiers must be in increasing order")
            if tier.orders_required < previous.orders_required:
                raise _KeyPathError((i, "min_orders"), "min_orders must not decrease")
        return tiers


# --- [complements] ---------------------------------------------------------------------------


class LearnedComplementsConfig(_Section):
    """Co-purchase complements learned at training time."""

    min_support: int = Field(default=3, ge=1, description="customers who bought both")
    min_lift: float = Field(default=1.5, gt=0)
    window_days: int = Field(default=0, ge=0, description="0 = same day (same order) only")
    max_per_item: int = Field(default=10, ge=1)
    max_p_value: float = Field(
        default=0.001, gt=0, le=1, description="one-sided test that a pair beats chance"
    )
    exclude_same_category: bool = Field(
        default=True, description="same leaf category = substitutes, never complements"
    )


class ComplementsConfig(_Section):
    boost: float = Field(
        default=1.5, ge=1.0, description="score multiplier for configured category complements"
    )
    learned_boost: float = Field(
        default=1.2, ge=1.0, description="score multiplier for learned complements (<= boost)"
    )
    recent_days: int = Field(default=180, ge=1, description="purchases that anchor a boost")
    map: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    learned: LearnedComplementsConfig = LearnedComplementsConfig()

    @model_validator(mode="after")
    def _learned_below_configured(self) -> ComplementsConfig:
        # a retailer's own pairs (TV -> wall mount) must outrank what co-purchase suggests
        if self.learned_boost > self.boost:
            raise _KeyPathError(("learned_boost",), "must be at most boost")
        return self

    @field_validator("map")
    @classmethod
    def _valid_map(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for source, targets in value.items():
            if (problem := category_problem(source)) is not None:
                raise _KeyPathError((source,), problem)
            for i, target in enumerate(targets):
                if (problem := category_problem(target)) is not None:
                    raise _KeyPathError((source, i), problem)
                # A category cannot complement itself: that would boost
                # substitutes, the opposite of what the durable rules want.
                if is_under(target, source) or is_under(source, target):
                    raise _KeyPathError(
                        (source, i), f"{target!r} overlaps {source!r}; a complement must differ"
                    )
        return value


# --- [categories] ----------------------------------------------------------------------------


class CategoryOverride(_Section):
    """A retailer's word on one category (and everything under it); beats learning."""

    kind: CategoryClass = Field(alias="class")
    interval_days: int | None = Field(default=None, ge=1)
    cooldown_days: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> CategoryOverride:
        if self.kind == "consumable" and self.interval_days is None:
            raise _KeyPathError(("interval_days",), "required when class is consumable")
        if self.kind != "consumable" and self.interval_days is not None:
            raise _KeyPathError(("interval_days",), "only a consumable has a repurchase interval")
        if self.kind != "durable" and self.cooldown_days is not None:
            raise _KeyPathError(("cooldown_days",), "only a durable has a cooldown")
        return self


class CategoriesConfig(_Section):
    """How categories are classified from history, and per-category overrides."""

    min_buyers: int = Field(default=20, ge=1, description="buyers needed to learn a category")
    min_repeat_buyers: int = Field(default=5, ge=1)
    durable_max_repeat_rate: float = Field(default=0.05, ge=0, le=1)
    consumable_min_repeat_rate: float = Field(default=0.25, ge=0, le=1)
    consumable_max_interval_spread: float | None = Field(
        default=None,
        ge=0,
        description="unset: any spread; else the (p75 - p25) / median a consumable may have",
    )
    durable_cooldown_days: int = Field(default=365, ge=1)
    item_min_buyers: int = Field(
        default=20, ge=1, description="buyers an item needs to learn its own cycle"
    )
    restock_due_share: float = Field(
        default=1.0, gt=0, le=1, description="share of a learned interval before it comes back"
    )
    personal_min_days: int = Field(
        default=2, ge=0, description="distinct days a customer bought an item: own cycle (0 off)"
    )
    personal_due_share: float = Field(
        default=0.5, gt=0, le=2, description="share of the customer's own interval"
    )
    restock_wait_days: float = Field(
        default=1.0,
        ge=0,
        le=365,
        description="days after a purchase before a horizon may bring the item back early",
    )
    rebuy_placements: tuple[str, ...] = ("newsletter", "order_confirmation")
    restock_horizon_days: dict[str, float] = Field(default_factory=lambda: {"newsletter": 60.0})
    overrides: dict[str, CategoryOverride] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _valid_keys(cls, value: dict[str, CategoryOverride]) -> dict[str, CategoryOverride]:
        for category in value:
            if (problem := category_problem(category)) is not None:
                raise _KeyPathError((category,), problem)
        return value

    @field_validator("rebuy_placements")
    @classmethod
    def _known_placements(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, placement in enumerate(value):
            if placement not in PLACEMENTS:
                raise _KeyPathError(
                    (i,), f"unknown placement {placement!r}; known: {', '.join(PLACEMENTS)}"
                )
        return value

    @field_validator("restock_horizon_days")
    @classmethod
    def _horizons(cls, value: dict[str, float]) -> dict[str, float]:
        for placement, days in value.items():
            if placement not in PLACEMENTS:
                raise _KeyPathError(
                    (placement,),
                    f"unknown placement {placement!r}; known: {', '.join(PLACEMENTS)}",
                )
            if not 0 <= days <= 365:
                raise _KeyPathError((placement,), f"must be between 0 and 365 days, got {days}")
        return value

    def horizon_days(self, placement: str) -> float:
        """Days ahead a bought item may come due and still be offered in `placement`."""
        if placement not in self.rebuy_placements:
            return 0.0
        return self.restock_horizon_days.get(placement, 0.0)

    @model_validator(mode="after")
    def _thresholds(self) -> CategoriesConfig:
        if self.consumable_min_repeat_rate < self.durable_max_repeat_rate:
            raise _KeyPathError(
                ("consumable_min_repeat_rate",),
                "must be at least durable_max_repeat_rate",
            )
        return self


# --- [contact], [candidates], [eligibility] --------------------------------------------------


class ContactConfig(_Section):
    max_offers: int = Field(default=1, ge=0, description="marketing contacts per period")
    period_days: int = Field(default=7, ge=1)
    marketing_placements: tuple[str, ...] = ("newsletter", "anniversary", "birthday")

    @field_validator("marketing_placements")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, placement in enumerate(value):
            if placement not in PLACEMENTS:
                raise _KeyPathError(
                    (i,), f"unknown placement {placement!r}; known: {', '.join(PLACEMENTS)}"
                )
        return value


class CandidatesConfig(_Section):
    pool_size: int = Field(default=200, ge=1, description="model candidates fed to the rules")


class EligibilityConfig(_Section):
    exclude_items: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()

    @field_validator("exclude_categories")
    @classmethod
    def _valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, category in enumerate(value):
            if (problem := category_problem(category)) is not None:
                raise _KeyPathError((i,), problem)
        return value


# --- [control], [[experiments]], [vouchers], [attribution]: the closed loop -------------------

#: Campaigns that can have their own holdout (`control.holdouts`).
CAMPAIGNS: tuple[str, ...] = ("anniversary", "birthday")
#: Sections a variant's `rules` may override (the control group and experiments may not).
VARIANT_OVERRIDABLE: tuple[str, ...] = (
    "loyalty", "complements", "categories", "contact", "candidates", "eligibility", "vouchers"
)
_SHARE_TOLERANCE = 1e-6


class ControlConfig(_Section):
    """Who is kept out of marketing so that its effect can be measured."""

    share: float = Field(default=0.05, ge=0, lt=1, description="global control group share")
    salt: str = Field(default="recsys-control-1", min_length=1)
    holdouts: dict[str, float] = Field(default_factory=dict)

    @field_validator("holdouts")
    @classmethod
    def _campaigns(cls, value: dict[str, float]) -> dict[str, float]:
        for campaign, share in value.items():
            if campaign not in CAMPAIGNS:
                raise _KeyPathError(
                    (campaign,), f"unknown campaign {campaign!r}; known: {', '.join(CAMPAIGNS)}"
                )
            if not 0 <= share < 1:
                raise _KeyPathError((campaign,), "a holdout share must be in [0, 1)")
        return value


class VariantConfig(_Section):
    """One arm of an experiment: what it changes and the share of customers it gets."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    share: float = Field(gt=0, le=1)
    model_version: str | None = Field(default=None, min_length=1)
    voucher_percent: int | None = Field(default=None, ge=0, le=100)
    rules: dict[str, Any] = Field(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _sections(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key not in VARIANT_OVERRIDABLE:
                raise _KeyPathError(
                    (key,),
                    f"a variant cannot override {key!r}; "
                    f"it may override {', '.join(VARIANT_OVERRIDABLE)}",
                )
        return value


class ExperimentConfig(_Section):
    """An A/B test on one placement. Deleting it from the file ends it."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    placement: str
    salt: str | None = Field(default=None, min_length=1)
    variants: tuple[VariantConfig, ...] = Field(min_length=1)

    @field_validator("placement")
    @classmethod
    def _placement(cls, value: str) -> str:
        if value not in PLACEMENTS:
            raise ValueError(f"unknown placement {value!r}; known: {', '.join(PLACEMENTS)}")
        return value

    @field_validator("variants")
    @classmethod
    def _shares(cls, variants: tuple[VariantConfig, ...]) -> tuple[VariantConfig, ...]:
        seen: set[str] = set()
        for i, variant in enumerate(variants):
            if variant.name in seen:
                raise _KeyPathError((i, "name"), f"duplicate variant name {variant.name!r}")
            seen.add(variant.name)
        total = sum(v.share for v in variants)
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            raise ValueError(f"variant shares must sum to 1, they sum to {total:g}")
        return variants

    @property
    def hash_salt(self) -> str:
        return self.salt or f"experiment:{self.name}"


class VouchersConfig(_Section):
    """Margin-aware campaign vouchers."""

    margin_floor: float = Field(
        default=0.10, ge=0, lt=1, description="least margin share of the discounted items"
    )
    skip_likely_buyers: bool = False
    likely_buyer_probability: float = Field(default=0.8, gt=0, le=1)


class AttributionConfig(_Section):
    placement_window_days: int = Field(default=7, ge=1, description="last-touch window")
    campaign_window_days: int = Field(
        default=30, ge=1, description="campaign offers without a voucher, and their holdouts"
    )


class RulesConfig(_Section):
    """The whole rules file. Frozen: build a new one to change anything."""

    loyalty: LoyaltyConfig = LoyaltyConfig()
    complements: ComplementsConfig = ComplementsConfig()
    categories: CategoriesConfig = CategoriesConfig()
    contact: ContactConfig = ContactConfig()
    candidates: CandidatesConfig = CandidatesConfig()
    eligibility: EligibilityConfig = EligibilityConfig()
    control: ControlConfig = ControlConfig()
    experiments: tuple[ExperimentConfig, ...] = ()
    vouchers: VouchersConfig = VouchersConfig()
    attribution: AttributionConfig = AttributionConfig()

    @field_validator("experiments")
    @classmethod
    def _one_per_placement(
        cls, experiments: tuple[ExperimentConfig, ...]
    ) -> tuple[ExperimentConfig, ...]:
        names: set[str] = set()
        placements: dict[str, str] = {}
        for i, experiment in enumerate(experiments):
            if experiment.name in names:
                raise _KeyPathError((i, "name"), f"duplicate experiment name {experiment.name!r}")
            names.add(experiment.name)
            if experiment.placement in placements:
                raise _KeyPathError(
                    (i, "placement"),
                    f"placement {experiment.placement!r} already has experiment "
                    f"{placements[experiment.placement]!r}; one experiment per placement",
                )
            placements[experiment.placement] = experiment.name
        return experiments

    @model_validator(mode="after")
    def _variant_rules(self) -> RulesConfig:
        for i, experiment in enumerate(self.experiments):
            for j, variant in enumerate(experiment.variants):
                if variant.rules:
                    try:
                        variant_rules(self, variant)
                    except RulesConfigError as exc:
                        raise _KeyPathError(
                            ("experiments", i, "variants", j, "rules"), "; ".join(exc.problems)
                        ) from None
        return self


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def variant_rules(rules: RulesConfig, variant: VariantConfig) -> RulesConfig:
    """`rules` with a variant's overrides applied (tables merge key by key, lists replace).

    The result has no experiments of its own. Raises RulesConfigError naming the key.
    """
    if not variant.rules:
        return rules.model_copy(update={"experiments": ()})
    base = rules.model_dump(mode="python", by_alias=True, exclude={"experiments"})
    return parse_rules(_merged(base, variant.rules))


# --- loading ---------------------------------------------------------------------------------


def load_rules(path: Path | None = None) -> RulesConfig:
    """Read and validate a rules file; `None` reads the shipped `rules.toml`.

    Raises `RulesConfigError` when the file cannot be read, is not TOML, or
    breaks a rule; never returns a partially valid config.
    """
    source = DEFAULT_RULES_PATH if path is None else path
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesConfigError(source, [f"cannot read the file: {exc}"]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesConfigError(source, [f"not valid TOML: {exc}"]) from exc
    return parse_rules(data, source=source)


def parse_rules(data: Mapping[str, Any], source: Path | None = None) -> RulesConfig:
    """Validate already-parsed TOML (a dict); raises `RulesConfigError`."""
    try:
        return RulesConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise RulesConfigError(source, _problems(exc)) from None


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc: tuple[str | int, ...] = tuple(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, _KeyPathError):
            loc += cause.subpath
            message = str(cause)
        elif error["type"] == "extra_forbidden":
            message = "unknown key"
        elif error["type"] == "missing":
            message = "required key is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{key_path(loc)}: {message}")
    return problems


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key_path(loc: tuple[str | int, ...]) -> str:
    """Render a location the way it is written in TOML: `a.b[2]."electronics/tv".c`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
        out += f".{text}" if out else text
    return out
