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
"""

from __future__ import annotations

import base64
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
from training.train import Progress, fit_model, resolve_params

__all__ = [
    "DEFAULT_EVAL_MODELS",
    "EvaluationReport",
    "ModelResult",
    "Split",
    "evaluate",
    "time_split",
    "write_report",
]

DEFAULT_EVAL_MODELS = ("popular", "repurchase", "item-knn", "bpr", "als", "hybrid")
TARGETS = ("all", "new")
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


def evaluate(
    purchases: pl.DataFrame,
    catalog: pl.DataFrame | None = None,
    *,
    holdout_days: int = 30,
    k: int = 10,
    ks: Sequence[int] = (1, 5, 10, 20),
    models: Sequence[str] = DEFAULT_EVAL_MODELS,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    now: datetime | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    num_threads: int = 0,
) -> EvaluationReport:
    """Train each model on the data before the cut and score it on the holdout.

    `params` maps a model name to overrides of its training defaults. `ks` are
    the cut-offs reported (k is always included). With `out_dir`, writes
    `report.json` and `report.html` there.
    """
    ks = tuple(sorted({*ks, k}))
    for name in models:
        resolve_params(name, (params or {}).get(name))  # fail before any fitting
    split = time_split(purchases, holdout_days, now)
    catalog_size = (
        catalog.height
        if catalog is not None and catalog.height
        else split.train["item_id"].n_unique()
    )
    users = sorted(split.truth_all)
    report = progress or (lambda _stage, _done, _total: None)
    results: list[ModelResult] = []
    for step, name in enumerate(models):
        report(f"evaluating {name}", step, len(models))
        started = time.perf_counter()
        fitted = fit_model(
            split.train,
            catalog,
            model=name,
            params=(params or {}).get(name),
            now=split.cut,
            num_threads=num_threads,
        )
        seconds = time.perf_counter() - started
        rec = fitted.recommender
        n = max(ks)
        all_lists = {
            c: [s.item_id for s in items] for c, items in rec.recommend_batch(users, n).items()
        }
        new_users = sorted(split.truth_new)
        new_lists = {
            c: [s.item_id for s in items]
            for c, items in rec.recommend_batch(new_users, n, exclude_seen=True).items()
        }
        used = {**fitted.params.matrix_json(), **rec.params}
        for target, truth, lists in (
            ("all", split.truth_all, all_lists),
            ("new", split.truth_new, new_lists),
        ):
            results.append(
                ModelResult(
                    name, target, _score(truth, lists, ks, catalog_size), len(truth), seconds, used
                )
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
    )
    if out_dir is not None:
        write_report(result, out_dir)
    return result


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
