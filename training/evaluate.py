"""Honest offline evaluation: a time-based holdout, two targets, a JSON + HTML report.

Split: everything before `cut = now - holdout_days` trains, the last
`holdout_days` are the test window. Customers evaluated are those who bought in
the test window *and* before the cut (new customers cannot be personalised; the
popularity fallback serves them). Two targets:

- `all`: every item the customer bought in the test window. Repurchases count,
  so a customer's own history is a strong baseline here.
- `new`: only test items the customer never bought before the cut. Models
  rank with already-bought items excluded, as the rules layer would do for
  durables.

Care (`training.care`): every model's top-K `all` list is checked for items a
careful retailer would not show (a durable in its cooldown, out of stock, an
already-bought non-consumable), counted per 1,000 lists from the history
before the cut. The rules-on row (`<served>+rules`) passes the served model's
candidate pool through `recsys.rules.run_pipeline` exactly as serving does,
with category behaviour and complements learned on the train side; it is
scored on both targets with the same list. Stock is the catalog's `in_stock`
as it is now for every row: historical stock is unknown.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from recsys.models.paired import PairedRecommender
from recsys.offers import (
    CATEGORY_BEHAVIOUR_KEY,
    COMPLEMENTS_KEY,
    CustomerData,
    ServingModel,
    recommend_for_customer,
)
from recsys.records import Item, Purchase
from recsys.rules.categories import CategoryBehaviour, behaviours_from_dict
from recsys.rules.config import RulesConfig, load_rules
from recsys.rules.learned_complements import LearnedComplements
from training.care import CareCounts, count_care_violations
from training.complement_eval import ComplementPrecision, complement_precision
from training.errors import TrainingError
from training.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    mean_metric,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from training.rules_learning import learn_rule_extras
from training.selection import AUTO_MODELS, Selection
from training.train import Progress, fit_model, resolve_params

__all__ = [
    "DEFAULT_EVAL_MODELS",
    "EvaluationReport",
    "ModelResult",
    "RulesOnSummary",
    "SavedModel",
    "Split",
    "catalog_items",
    "evaluate",
    "saved_model",
    "time_split",
    "write_report",
]

DEFAULT_EVAL_MODELS = AUTO_MODELS
TARGETS = ("all", "new")
RULES_SUFFIX = "+rules"
SERVED_PREFIX = "served@"
#: Placements the served model is scored under (birthday serves like anniversary).
SERVED_PLACEMENTS = ("newsletter", "anniversary", "order_confirmation")
#: Complements shown per anchor when complement precision is measured (a cross-sell block).
COMPLEMENT_K = 5
_METRICS: Mapping[str, Callable[[Any, Any, int], float]] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
    "hit_rate": hit_rate_at_k,
}


@dataclass(frozen=True, slots=True)
class Split:
    """A time-based split; `cut` (naive UTC) is the first instant of the test window.

    truth_all / truth_new: customer -> items bought in the test window (all, or
    only those never bought before the cut), for customers with history.
    """

    train: pl.DataFrame
    cut: datetime
    end: datetime
    truth_all: dict[str, set[str]]
    truth_new: dict[str, set[str]]


@dataclass(frozen=True, slots=True)
class SavedModel:
    """A model fitted elsewhere (a saved version, e.g. trained on Spark), scored as it is.

    `trained_until`: its newest training purchase (naive UTC); it must come before the
    test window. It is scored like the fitted models: its raw rows and its served list.
    """

    name: str
    recommender: Any
    trained_until: datetime
    params: Mapping[str, Any]


def saved_model(models_dir: Path, version: str) -> SavedModel:
    """Version `version` of `models_dir` as a `SavedModel` named after it; ArtifactError."""
    from training.artifacts import load_model

    loaded = load_model(models_dir, version, mmap=True)
    meta = loaded.meta
    last = meta.data_fingerprint.get("last_purchase")
    until = datetime.fromisoformat(last) if isinstance(last, str) else meta.created_at
    engine = meta.extras.get("training_engine")
    params: dict[str, Any] = {**meta.matrix_params, **meta.params, "version": loaded.version,
                              "model": meta.model}
    if isinstance(engine, dict):
        params["engine"] = engine.get("name")
    return SavedModel(loaded.version, loaded.recommender, until, params)


@dataclass(frozen=True, slots=True)
class ModelResult:
    """Metrics of one model on one target.

    metrics: name@k -> value for every k in `ks` (precision, recall, ndcg, map,
        hit_rate, coverage).
    users: customers evaluated (with non-empty truth for the target).
    train_seconds: wall time of matrix building + fit (s).
    """

    model: str
    target: str
    metrics: dict[str, float]
    users: int
    train_seconds: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RulesOnSummary:
    """The served model with the rules pipeline on, against the raw model.

    recall_new_share: recall@k on new items of the rules-on row divided by the
    raw served model's (None when the raw recall is 0). removed: rule name ->
    candidates it dropped, summed over customers. fillers: served items that
    came from the popular fillers, summed over customers.
    """

    served: str
    row: str
    k: int
    pool: int
    recall_new_raw: float
    recall_new_rules: float
    recall_new_share: float | None
    removed: dict[str, int]
    fillers: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "served": self.served,
            "row": self.row,
            "k": self.k,
            "pool": self.pool,
            f"recall_new@{self.k}_raw": self.recall_new_raw,
            f"recall_new@{self.k}_rules": self.recall_new_rules,
            "recall_new_share": self.recall_new_share,
            "removed": self.removed,
            "fillers": self.fillers,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """All results of one evaluation run, serialisable to report.json."""

    cut: datetime
    end: datetime
    holdout_days: int
    k: int
    ks: tuple[int, ...]
    train_rows: int
    train_customers: int
    catalog_items: int
    results: tuple[ModelResult, ...]
    care: dict[str, CareCounts] = field(default_factory=dict)
    rules: RulesOnSummary | None = None
    served: str | None = None
    selection: Selection | None = None
    complements: ComplementPrecision | None = None

    def result(self, model: str, target: str) -> ModelResult:
        for r in self.results:
            if r.model == model and r.target == target:
                return r
        raise KeyError((model, target))

    def to_json(self) -> dict[str, Any]:
        return {
            "cut": self.cut.isoformat(),
            "end": self.end.isoformat(),
            "holdout_days": self.holdout_days,
            "k": self.k,
            "ks": list(self.ks),
            "train_rows": self.train_rows,
            "train_customers": self.train_customers,
            "catalog_items": self.catalog_items,
            "results": [
                {
                    "model": r.model,
                    "target": r.target,
                    "users": r.users,
                    "train_seconds": round(r.train_seconds, 4),
                    "metrics": r.metrics,
                    "params": r.params,
                }
                for r in self.results
            ],
            "care": {model: counts.to_json() for model, counts in self.care.items()},
            "rules": self.rules.to_json() if self.rules is not None else None,
            "served": self.served,
            "selection": self.selection.to_json() if self.selection is not None else None,
            "complements": self.complements.to_json() if self.complements is not None else None,
        }


def time_split(purchases: pl.DataFrame, holdout_days: int, now: datetime | None = None) -> Split:
    """Split at `now - holdout_days` (`now` default: the last purchase time).

    Test truth uses bought lines (quantity > 0) in `[cut, now]`; training uses
    every line before the cut, returns included. Raises TrainingError when
    either side is empty.
    """
    if holdout_days < 1:
        raise TrainingError("holdout_days must be >= 1")
    if purchases.height == 0:
        raise TrainingError("no purchases to evaluate on")
    if now is None:
        last = purchases.get_column("purchased_at").max()
        assert isinstance(last, datetime)
        now = last
    cut = now - timedelta(days=holdout_days)
    train = purchases.filter(pl.col("purchased_at") < cut)
    test = purchases.filter(
        (pl.col("purchased_at") >= cut) & (pl.col("purchased_at") <= now) & (pl.col("quantity") > 0)
    )
    if train.height == 0 or test.height == 0:
        raise TrainingError(f"the split at {cut:%Y-%m-%d} leaves an empty train or test side")
    history = (
        train.group_by("customer_id", "item_id")
        .agg(pl.col("quantity").sum())
        .filter(pl.col("quantity") > 0)
    )
    known = set(history.get_column("customer_id").to_list())
    seen: dict[str, set[str]] = {}
    for customer_id, item_id in history.select("customer_id", "item_id").iter_rows():
        seen.setdefault(customer_id, set()).add(item_id)
    truth_all: dict[str, set[str]] = {}
    for customer_id, item_id in test.select("customer_id", "item_id").iter_rows():
        if customer_id in known:
            truth_all.setdefault(customer_id, set()).add(item_id)
    truth_new = {c: items - seen.get(c, set()) for c, items in truth_all.items()}
    truth_new = {c: items for c, items in truth_new.items() if items}
    return Split(train, cut, now, truth_all, truth_new)


def _score(
    truth: Mapping[str, set[str]],
    predictions: Mapping[str, Sequence[str]],
    ks: Sequence[int],
    catalog_size: int,
) -> dict[str, float]:
    out: dict[str, float] = {}
    for k in ks:
        for name, metric in _METRICS.items():
            out[f"{name}@{k}"] = mean_metric(metric, truth, predictions, k)
        lists = [predictions.get(c, []) for c in truth]
        out[f"coverage@{k}"] = catalog_coverage(lists, catalog_size, k)
    return out


def catalog_items(catalog: pl.DataFrame) -> dict[str, Item]:
    """item_id -> `Item` from a catalog frame; columns named like Item's fields, others ignored.

    A missing or null `in_stock` counts as in stock (the `Item` default).
    """
    names = [f.name for f in dataclasses.fields(Item) if f.name in catalog.columns]
    items: dict[str, Item] = {}
    for row in catalog.select(names).iter_rows(named=True):
        if row.get("in_stock") is None:
            row.pop("in_stock", None)
        items[str(row["item_id"])] = Item(**row)
    return items


def _purchases_by_customer(
    train: pl.DataFrame, customers: Sequence[str]
) -> dict[str, list[Purchase]]:
    """Each customer's train lines as `Purchase` records (what the store loads at serving)."""
    price = pl.col("unit_price") if "unit_price" in train.columns else pl.lit(None, pl.Float64)
    frame = train.filter(
        pl.col("customer_id").is_in(pl.Series(list(customers), dtype=pl.String).implode())
    ).select(
        "customer_id",
        pl.col("order_id").cast(pl.String),
        "item_id",
        pl.col("quantity").cast(pl.Float64),
        price.cast(pl.Float64).alias("unit_price"),
        "purchased_at",
    )
    out: dict[str, list[Purchase]] = {}
    for customer_id, order_id, item_id, quantity, unit_price, at in frame.iter_rows():
        out.setdefault(customer_id, []).append(
            Purchase(order_id, item_id, quantity, unit_price, at)
        )
    return out


@dataclass(frozen=True, slots=True)
class RulesInputs:
    """What served lists and care counts need, learned on the train side of a split."""

    rules: RulesConfig
    items: dict[str, Item]
    extras: dict[str, Any]
    behaviours: dict[str, CategoryBehaviour]


def rules_inputs(train: pl.DataFrame, catalog: pl.DataFrame, rules: RulesConfig) -> RulesInputs:
    frame = catalog
    if "category" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("category"))
    extras: dict[str, Any] = dict(learn_rule_extras(train, frame, rules))
    behaviours = behaviours_from_dict(extras.get(CATEGORY_BEHAVIOUR_KEY) or {})
    return RulesInputs(rules, catalog_items(catalog), extras, behaviours)


@dataclass(frozen=True, slots=True)
class ServedLists:
    """The lists `recsys.offers.recommend_for_customer` serves, with what the rules did."""

    lists: dict[str, list[str]]
    removed: dict[str, int]
    fillers: int
    seconds: float


def served_lists(
    recommender: Any,
    name: str,
    users: Sequence[str],
    train: pl.DataFrame,
    now: datetime,
    inputs: RulesInputs,
    n: int,
    placement: str = "newsletter",
) -> ServedLists:
    """Serve `users` exactly as the API does at `now` for a model trained on `train`.

    This calls `recommend_for_customer`, the API's own code path, with each customer's
    train-side history and no contact history (a contact cap would hide lists for
    reasons that have nothing to do with ranking). A model trained with `recsys train
    --as-of NOW` and asked with `as_of=NOW` returns the same lists.
    """
    started = time.perf_counter()
    model = ServingModel.from_parts(
        "evaluation", name, recommender, inputs.extras,
        pool=inputs.rules.candidates.pool_size, trained_at=now,
    )
    history = _purchases_by_customer(train, users)
    # Nobody is held out as a control here: an empty list says nothing about ranking either.
    rules = inputs.rules.model_copy(
        update={"control": inputs.rules.control.model_copy(update={"share": 0.0})}
    )
    lists: dict[str, list[str]] = {}
    removed: dict[str, int] = {}
    n_fillers = 0
    cache: dict[str, CategoryBehaviour | None] = {}
    for customer_id in users:
        offer = recommend_for_customer(
            model,
            rules,
            inputs.items,
            CustomerData(customer_id, None, history.get(customer_id, ())),
            placement=placement,
            limit=n,
            now=now,
            behaviour_cache=cache,
        )
        lists[customer_id] = [item.item_id for item in offer.items]
        n_fillers += offer.fillers
        for rule, count in offer.removed.items():
            removed[rule] = removed.get(rule, 0) + count
    return ServedLists(lists, removed, n_fillers, time.perf_counter() - started)


def evaluate(
    purchases: pl.DataFrame,
    catalog: pl.DataFrame | None = None,
    *,
    holdout_days: int = 30,
    validation_days: int | None = None,
    k: int = 10,
    ks: Sequence[int] = (1, 5, 10, 20),
    models: Sequence[str] = DEFAULT_EVAL_MODELS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    now: datetime | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    num_threads: int = 0,
    served: str | None = "auto",
    rules: RulesConfig | None = None,
    placements: Sequence[str] = SERVED_PLACEMENTS,
    artifacts: Sequence[SavedModel] = (),
) -> EvaluationReport:
    """Train each model before the test window and score it, raw and as served, on it.

    Protocol (docs/evaluation.md): the test window is the last `holdout_days` up to
    `now` (default: the newest purchase); the validation window the `validation_days`
    (default: `holdout_days`) before it. With `served="auto"` the served model is
    chosen by `training.selection.select_model` on the validation window only; a model
    name serves that model instead, None serves none. Every model is then refit on
    everything before the test window and scored once: its raw ranking (`all`, and
    `new` with bought items excluded) and, with a non-empty `catalog`, its served
    newsletter list (`<model>+rules`). The served model also gets a row per placement
    (`served@<placement>`). Care violations are counted for every list. With
    `out_dir`, writes `report.json` and `report.html` there. `artifacts`: models fitted
    elsewhere (`saved_model`: a Spark-trained version, say), scored after the fitted ones
    with the same rows under their own name, unchanged. Raises TrainingError for
    an unknown model or parameter, a served model that is not evaluated, an artifact
    trained on purchases of the test window, or a test window without customers who
    bought before it.
    """
    from training.selection import PAIRED, candidate_params, select_model

    ks = tuple(sorted({*ks, k}))
    for name in models:
        resolve_params(name, (params or {}).get(name))  # fail before any fitting
    if served is not None and served != "auto" and served not in models:
        raise TrainingError(
            f"served model {served!r} is not among the evaluated models ({', '.join(models)})"
        )
    for placement in placements:
        if placement not in SERVED_PLACEMENTS:
            raise TrainingError(
                f"unknown placement {placement!r}; choose from {', '.join(SERVED_PLACEMENTS)}"
            )
    split = time_split(purchases, holdout_days, now)
    if not split.truth_all:
        raise TrainingError(
            f"the test window {split.cut:%Y-%m-%d}..{split.end:%Y-%m-%d} has no customers "
            "who also bought before it: nothing to evaluate (try a longer --holdout-days)"
        )
    for saved in artifacts:  # before any fitting
        if saved.trained_until >= split.cut:
            raise TrainingError(
                f"{saved.name} was trained on purchases up to {saved.trained_until:%Y-%m-%d %H:%M}"
                f", not before the test window starts ({split.cut:%Y-%m-%d %H:%M}); train it with "
                f"--as-of {split.cut.isoformat()}"
            )
    rules = rules if rules is not None else load_rules(None)
    has_catalog = catalog is not None and catalog.height > 0
    catalog_size = (
        catalog.height
        if catalog is not None and has_catalog
        else split.train["item_id"].n_unique()
    )
    report = progress or (lambda _stage, _done, _total: None)
    selection = None
    served_model = served
    if served == "auto":
        report("choosing the served model on the validation window", 0, len(models) + 1)
        selection = select_model(
            split.train,
            catalog,
            rules,
            candidates=models,
            validation_days=validation_days or holdout_days,
            k=k,
            params=params,
            num_threads=num_threads,
            progress=progress,
        )
        served_model = selection.chosen
    inputs = (
        rules_inputs(split.train, catalog, rules) if catalog is not None and has_catalog else None
    )
    users = sorted(split.truth_all)
    new_users = sorted(split.truth_new)
    results: list[ModelResult] = []
    care: dict[str, CareCounts] = {}
    summary: RulesOnSummary | None = None
    n = max(ks)

    def score(
        name: str, rec: Any, seconds: float, used: dict[str, Any], step: int, raw: bool = True
    ) -> None:
        """The rows of one fitted model: raw on both targets (unless not `raw`: a pair,
        whose models have their own rows), then as served."""
        nonlocal summary
        # A pair answers placement-blind calls with its newsletter model: these raw lists
        # are the ones the served newsletter's recall on new items is compared with.
        new_lists = {
            c: [s.item_id for s in items]
            for c, items in rec.recommend_batch(new_users, n, exclude_seen=True).items()
        }
        if raw:
            all_lists = {
                c: [s.item_id for s in items]
                for c, items in rec.recommend_batch(users, n).items()
            }
            for target, truth, lists in (
                ("all", split.truth_all, all_lists),
                ("new", split.truth_new, new_lists),
            ):
                results.append(
                    ModelResult(
                        name, target, _score(truth, lists, ks, catalog_size), len(truth),
                        seconds, used,
                    )
                )
        if inputs is None:
            return
        if raw:
            care[name] = _care(all_lists, split, inputs, k)
        runs = [("newsletter", f"{name}{RULES_SUFFIX}")]
        if name == served_model:
            runs += [(p, f"{SERVED_PREFIX}{p}") for p in placements]
        served_by: dict[str, ServedLists] = {}  # the newsletter row and served@ share lists
        for placement, row in runs:
            if placement not in served_by:
                report(f"serving {name} ({placement})", step, len(models))
                served_by[placement] = served_lists(
                    rec, name, users, split.train, split.cut, inputs, n, placement
                )
            ruled = served_by[placement]
            row_params = {**used, "model": name, "placement": placement}
            for target, truth in (("all", split.truth_all), ("new", split.truth_new)):
                results.append(
                    ModelResult(
                        row,
                        target,
                        _score(truth, ruled.lists, ks, catalog_size),
                        len(truth),
                        seconds,
                        row_params,
                    )
                )
            care[row] = _care(ruled.lists, split, inputs, k, placement)
            if row == f"{SERVED_PREFIX}newsletter":
                raw_new = mean_metric(recall_at_k, split.truth_new, new_lists, k)
                on = mean_metric(recall_at_k, split.truth_new, ruled.lists, k)
                summary = RulesOnSummary(
                    served=name,
                    row=row,
                    k=k,
                    pool=inputs.rules.candidates.pool_size,
                    recall_new_raw=raw_new,
                    recall_new_rules=on,
                    recall_new_share=on / raw_new if raw_new > 0 else None,
                    removed=ruled.removed,
                    fillers=ruled.fillers,
                    seconds=ruled.seconds,
                )

    parts: dict[str, tuple[Any, float]] = {}
    for step, name in enumerate(models):
        report(f"evaluating {name}", step, len(models))
        started = time.perf_counter()
        fitted = fit_model(
            split.train,
            catalog,
            model=name,
            params=candidate_params(name, catalog_size, (params or {}).get(name)),
            now=split.cut,
            num_threads=num_threads,
        )
        seconds = time.perf_counter() - started
        rec = fitted.recommender
        score(name, rec, seconds, {**fitted.params.matrix_json(), **rec.params}, step)
        if selection is not None and name in (selection.rebuy, selection.discovery):
            parts[name] = (rec, seconds)
    if selection is not None and served_model == PAIRED:
        # The pair is its two fitted models joined: its rows are the served ones only.
        (rebuy, rebuy_s), (found, found_s) = parts[selection.rebuy], parts[selection.discovery]
        pair = PairedRecommender.of(rebuy, found)
        score(PAIRED, pair, rebuy_s + found_s, dict(selection.params), len(models), raw=False)
    for saved in artifacts:
        report(f"evaluating {saved.name}", len(models), len(models))
        score(saved.name, saved.recommender, 0.0, dict(saved.params), len(models))
    complements = None
    if inputs is not None:
        report("complement precision", len(models), len(models))
        test_lines = purchases.filter(
            (pl.col("purchased_at") >= split.cut) & (pl.col("purchased_at") <= split.end)
        )
        complements = complement_precision(
            split.train,
            test_lines,
            inputs.items,
            LearnedComplements.from_dict(inputs.extras.get(COMPLEMENTS_KEY) or {}),
            inputs.rules.complements,
            k=COMPLEMENT_K,
        )
    report("done", len(models), len(models))
    result = EvaluationReport(
        cut=split.cut,
        end=split.end,
        holdout_days=holdout_days,
        k=k,
        ks=ks,
        train_rows=split.train.height,
        train_customers=split.train["customer_id"].n_unique(),
        catalog_items=catalog_size,
        results=tuple(results),
        care=care,
        rules=summary,
        served=served_model if inputs is not None else None,
        selection=selection,
        complements=complements,
    )
    if out_dir is not None:
        write_report(result, out_dir)
    return result


def _care(
    lists: Mapping[str, Sequence[str]],
    split: Split,
    inputs: RulesInputs,
    k: int,
    placement: str = "newsletter",
) -> CareCounts:
    """Care of `lists` as shown in `placement` (raw model lists: as a newsletter)."""
    return count_care_violations(
        lists,
        split.train,
        inputs.items,
        inputs.behaviours,
        inputs.rules.categories,
        split.cut,
        k=k,
        placement=placement,
    )


# ---- report files -----------------------------------------------------------------------


def write_report(report: EvaluationReport, out_dir: Path) -> tuple[Path, Path]:
    """Write `report.json` and a self-contained `report.html` (plots inlined as PNG)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(report: EvaluationReport) -> list[tuple[str, str]]:
    # Agg and an explicit Figure: no GUI backend, no global pyplot state
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(r.model for r in report.results))
    images = []
    fig = Figure(figsize=(11, 4))
    for pos, target in enumerate(TARGETS, start=1):
        ax = fig.add_subplot(1, 2, pos)
        for model in models:
            r = report.result(model, target)
            ax.plot(
                report.ks, [r.metrics[f"recall@{k}"] for k in report.ks], marker="o", label=model
            )
        ax.set_title(f"recall@K, {target} items")
        ax.set_xlabel("K")
        ax.set_ylabel("recall")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    images.append(("Recall at K", _png(fig)))

    fig = Figure(figsize=(11, 4))
    for pos, target in enumerate(TARGETS, start=1):
        ax = fig.add_subplot(1, 2, pos)
        values = [report.result(m, target).metrics[f"ndcg@{report.k}"] for m in models]
        ax.bar(models, values, color="tab:blue")
        ax.set_title(f"NDCG@{report.k}, {target} items")
        ax.tick_params(axis="x", rotation=30)
        ax.grid(axis="y", alpha=0.3)
    images.append((f"NDCG@{report.k} per model", _png(fig)))
    return images


def render_html(report: EvaluationReport) -> str:
    """The report as one HTML page with no external resources."""
    k = report.k
    columns = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage"]
    sections = []
    for target in TARGETS:
        rows = []
        for r in (r for r in report.results if r.target == target):
            cells = "".join(f"<td>{r.metrics[f'{c}@{k}']:.4f}</td>" for c in columns)
            rows.append(
                f"<tr><th>{html.escape(r.model)}</th>{cells}"
                f"<td>{r.train_seconds:.2f}</td><td>{r.users}</td></tr>"
            )
        head = "".join(f"<th>{c}@{k}</th>" for c in columns)
        sections.append(
            f"<h2>Target: {target} items</h2><table><tr><th>model</th>{head}"
            f"<th>train s</th><th>users</th></tr>{''.join(rows)}</table>"
        )
    sections.append(_care_html(report))
    images = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in _plots(report)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>recsys evaluation</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>Offline evaluation</h1><p>Train before {report.cut:%Y-%m-%d %H:%M}, "
        f"test {report.holdout_days} days to {report.end:%Y-%m-%d %H:%M}; "
        f"{report.train_rows} training rows, {report.train_customers} customers, "
        f"{report.catalog_items} catalog items. K = {k}.</p>"
        "<p><b>all</b>: every item bought in the test window; <b>new</b>: only items the "
        "customer had never bought (already-bought items excluded from the ranking).</p>"
        f"{''.join(sections)}{images}</body></html>"
    )


def _care_html(report: EvaluationReport) -> str:
    if not report.care:
        return "<h2>Care violations</h2><p>Not counted: no catalog was given.</p>"
    kinds = ("durable_in_cooldown", "out_of_stock", "reoffered", "total")
    rows = []
    for model, counts in report.care.items():
        per = counts.per_1000()
        cells = "".join(f"<td>{per[f'{kind}_per_1000']:.1f}</td>" for kind in kinds)
        rows.append(f"<tr><th>{html.escape(model)}</th>{cells}<td>{counts.lists}</td></tr>")
    head = "".join(f"<th>{kind} /1000</th>" for kind in kinds)
    text = (
        f"<h2>Care violations in the top-{report.k} all-items lists</h2>"
        "<p>Per 1,000 lists, from the history before the cut. Stock is the catalog's "
        "<code>in_stock</code> as it is now (historical stock is unknown).</p>"
        f"<table><tr><th>model</th>{head}<th>lists</th></tr>{''.join(rows)}</table>"
    )
    if report.rules is not None:
        r = report.rules
        share = "n/a" if r.recall_new_share is None else f"{r.recall_new_share:.1%}"
        removed = ", ".join(f"{html.escape(k)} {v}" for k, v in sorted(r.removed.items()))
        text += (
            f"<p><b>{html.escape(r.row)}</b>: recall@{r.k} on new items "
            f"{r.recall_new_rules:.4f} vs {r.recall_new_raw:.4f} raw = {share} "
            f"(pool {r.pool}; removed: {removed or 'none'}; fillers served {r.fillers}).</p>"
        )
    return text
