"""`--model auto`: choose the model on a validation window, by the list customers are served.

The validation window is the last `validation_days` of the data it is given. Each
candidate is trained on what came before the window and scored twice, by NDCG@k of
the lists it would serve (`recsys.offers.recommend_for_customer`, rules on) against
what customers bought in the window: its newsletter list on all purchases (the
placements that may bring bought items back) and its anniversary list on items new to
the customer (the placements that never do). The best of each wins, ties going to the
earlier candidate; when they differ the choice is the pair (`recsys.models.paired`).
`recsys train` runs this on the whole store and then refits the winner on
all of it; `recsys evaluate` runs it on the train side of its test split, so the test
window is never looked at when choosing (train < validation < test in time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from recsys.models.base import JSONValue
from recsys.rules.config import RulesConfig
from training.errors import TrainingError
from training.metrics import mean_metric, ndcg_at_k

__all__ = [
    "AUTO_MODELS",
    "MAX_TIFU_CUSTOMERS",
    "Selection",
    "candidate_params",
    "paired_params",
    "select_model",
    "sized_factors",
]

#: What `--model auto` chooses from: the baselines, the repeat-aware kNN and the
#: collaborative-filtering models.
AUTO_MODELS: tuple[str, ...] = (
    "popular",
    "repurchase",
    "tifu-knn",
    "item-knn",
    "bpr",
    "als",
    "hybrid",
)
#: tifu-knn searches neighbours exactly; past this many customers it is left out.
MAX_TIFU_CUSTOMERS = 100_000
_FACTOR_MODELS = frozenset({"als", "bpr", "hybrid"})
#: The placement that scores a candidate for the placements that never re-offer.
DISCOVERY_PLACEMENT = "anniversary"
PAIRED = "paired"


def sized_factors(n_items: int) -> int:
    """Latent factors for a catalog of `n_items`: the power of two nearest sqrt(n), 8..128.

    64 factors on 167 items (a category-level grocery export) is more parameters per
    item than purchases support; 3,665 items (UCI) get 64, 100k items 128.
    """
    if n_items < 2:
        return 8
    power = round(math.log2(math.sqrt(n_items)))
    return int(min(max(2**power, 8), 128))


def candidate_params(
    model: str, n_items: int, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters auto trains `model` with: factors sized to the catalog, then overrides."""
    params: dict[str, Any] = {}
    if model in _FACTOR_MODELS:
        params["factors"] = sized_factors(n_items)
    params.update(overrides or {})
    return params


@dataclass(frozen=True, slots=True)
class Selection:
    """What auto chose and why.

    `rebuy`: the model with the best served newsletter on all purchases (`scores`);
    `discovery`: the one with the best served anniversary list on new items
    (`discovery_scores`); `chosen` is that model when they agree, else `paired`.
    `new_scores`: the newsletter list on new items, for reference.
    """

    chosen: str
    params: dict[str, Any]
    k: int
    window_start: datetime
    window_end: datetime
    customers: int
    scores: dict[str, float]
    new_scores: dict[str, float]
    skipped: dict[str, str]
    rebuy: str = ""
    discovery: str = ""
    discovery_scores: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.scores[self.rebuy or self.chosen]

    @property
    def reason(self) -> str:
        window = (
            f"validation window {self.window_start:%Y-%m-%d}..{self.window_end:%Y-%m-%d} "
            f"({self.customers} customers)"
        )
        text = (
            f"best served NDCG@{self.k} on all purchases (newsletter) in the {window}: "
            f"{self.rebuy or self.chosen} {self.score:.4f}{_runner_up(self.scores, self.rebuy)}"
        )
        if self.discovery_scores and self.discovery:
            best = self.discovery_scores[self.discovery]
            text += (
                f"; on new items (anniversary): {self.discovery} {best:.4f}"
                f"{_runner_up(self.discovery_scores, self.discovery)}"
            )
        return text

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "chosen": self.chosen,
            "params": dict(self.params),
            "metric": f"served ndcg@{self.k} (newsletter, all purchases)",
            "k": self.k,
            "validation_start": self.window_start.isoformat(),
            "validation_end": self.window_end.isoformat(),
            "customers": self.customers,
            "scores": {m: round(v, 6) for m, v in self.scores.items()},
            "new_scores": {m: round(v, 6) for m, v in self.new_scores.items()},
            "rebuy": self.rebuy or self.chosen,
            "discovery": self.discovery or self.chosen,
            "discovery_metric": f"served ndcg@{self.k} (anniversary, new items)",
            "discovery_scores": {m: round(v, 6) for m, v in self.discovery_scores.items()},
            "skipped": dict(self.skipped),
            "reason": self.reason,
        }


def _runner_up(scores: Mapping[str, float], chosen: str) -> str:
    rest = sorted(((s, m) for m, s in scores.items() if m != chosen), reverse=True)
    return f"; next {rest[0][1]} {rest[0][0]:.4f}" if rest else ""


def paired_params(
    rebuy: str, discovery: str, params: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """The `paired` model's parameters from each of its models' (`params[name]`)."""
    return {
        "rebuy": rebuy,
        "discovery": discovery,
        "rebuy_params": dict(params.get(rebuy) or {}),
        "discovery_params": dict(params.get(discovery) or {}),
    }


def select_model(
    purchases: pl.DataFrame,
    catalog: pl.DataFrame | None,
    rules: RulesConfig,
    *,
    candidates: Sequence[str] = AUTO_MODELS,
    validation_days: int = 30,
    k: int = 10,
    end: datetime | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    num_threads: int = 0,
    progress: Any = None,
) -> Selection:
    """Fit every candidate before the validation window and keep the best served one.

    Raises TrainingError for fewer than two candidates, an empty window, a window
    without customers who also bought before it, or when no candidate can be fitted.
    """
    from training.evaluate import rules_inputs, served_lists, time_split
    from training.train import fit_model, resolve_params

    names = list(dict.fromkeys(candidates))
    if len(names) < 2:
        raise TrainingError(
            f"--model auto needs at least two candidate models to choose from, got "
            f"{', '.join(names) or 'none'}; train that model directly with --model"
        )
    for name in names:
        resolve_params(name, (params or {}).get(name))
    split = time_split(purchases, validation_days, end)
    users = sorted(split.truth_all)
    if not users:
        raise TrainingError(
            f"the validation window {split.cut:%Y-%m-%d}..{split.end:%Y-%m-%d} has no "
            "customers who also bought before it; use a longer history or --model NAME"
        )
    has_catalog = catalog is not None and catalog.height > 0
    inputs = (
        rules_inputs(split.train, catalog, rules)
        if catalog is not None and has_catalog
        else None
    )
    n_items = (
        catalog.height if has_catalog and catalog is not None else split.train["item_id"].n_unique()
    )
    n_customers = split.train["customer_id"].n_unique()
    report = progress or (lambda _stage, _done, _total: None)
    scores: dict[str, float] = {}
    new_scores: dict[str, float] = {}
    discovery_scores: dict[str, float] = {}
    skipped: dict[str, str] = {}
    chosen_params: dict[str, dict[str, Any]] = {}
    for step, name in enumerate(names):
        if name == "tifu-knn" and n_customers > MAX_TIFU_CUSTOMERS:
            skipped[name] = f"more than {MAX_TIFU_CUSTOMERS:,} customers"
            continue
        report(f"validating {name}", step, len(names))
        model_params = candidate_params(name, n_items, (params or {}).get(name))
        try:
            fitted = fit_model(
                split.train, catalog, model=name, params=model_params, now=split.cut,
                num_threads=num_threads,
            )
        except TrainingError as exc:
            skipped[name] = str(exc)
            continue
        rec = fitted.recommender
        if inputs is not None:
            lists = served_lists(rec, name, users, split.train, split.cut, inputs, k).lists
        else:
            lists = {
                c: [s.item_id for s in items] for c, items in rec.recommend_batch(users, k).items()
            }
        scores[name] = mean_metric(ndcg_at_k, split.truth_all, lists, k)
        new_scores[name] = mean_metric(ndcg_at_k, split.truth_new, lists, k)
        if inputs is not None:
            found = served_lists(
                rec, name, users, split.train, split.cut, inputs, k, DISCOVERY_PLACEMENT
            ).lists
        else:
            found = {
                c: [s.item_id for s in items]
                for c, items in rec.recommend_batch(users, k, exclude_seen=True).items()
            }
        discovery_scores[name] = mean_metric(ndcg_at_k, split.truth_new, found, k)
        chosen_params[name] = model_params
    if not scores:
        raise TrainingError(
            "no candidate model could be fitted on the data before the validation window: "
            + "; ".join(f"{m}: {why}" for m, why in skipped.items())
        )
    best = max(scores, key=lambda m: (scores[m], -names.index(m)))
    # The rebuy model keeps discovery placements too unless another one does better there.
    finder = max(
        discovery_scores,
        key=lambda m: (discovery_scores[m], m == best, -names.index(m)),
    )
    chosen, chosen_at = best, chosen_params[best]
    if finder != best:
        chosen, chosen_at = PAIRED, paired_params(best, finder, chosen_params)
    return Selection(
        chosen=chosen,
        params=chosen_at,
        rebuy=best,
        discovery=finder,
        discovery_scores=discovery_scores,
        k=k,
        window_start=split.cut,
        window_end=split.end,
        customers=len(users),
        scores=scores,
        new_scores=new_scores,
        skipped=skipped,
    )
