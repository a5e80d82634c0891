"""Ranking metrics: plain functions of (truth, predictions) -> float.

Per-customer functions take the customer's relevant items (`truth`, a set) and
the ranked predictions (best first). Relevance is binary. `k` must be >= 1.
The `mean_*` helper averages a per-customer metric over customers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

__all__ = [
    "average_precision_at_k",
    "catalog_coverage",
    "hit_rate_at_k",
    "mean_metric",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]

Metric = Callable[[Collection[str], Sequence[str], int], float]


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def _hits(truth: Collection[str], predicted: Sequence[str], k: int) -> list[bool]:
    # a repeated prediction counts once, like a list shown to a customer
    seen: set[str] = set()
    hits = []
    for item in predicted[:k]:
        hits.append(item in truth and item not in seen)
        seen.add(item)
    return hits


def precision_at_k(truth: Collection[str], predicted: Sequence[str], k: int) -> float:
    """Share of the top-`k` predictions that are relevant: hits / k.

    The denominator is always `k`, so a customer given fewer than `k` predictions,
    or with fewer than `k` relevant items, cannot reach 1.0 (the ceiling is
    min(len(truth), len(predicted)) / k). Empty truth -> 0.0.
    """
    _check_k(k)
    return sum(_hits(truth, predicted, k)) / k


def recall_at_k(truth: Collection[str], predicted: Sequence[str], k: int) -> float:
    """Share of the relevant items found in the top `k`: hits / len(truth).

    Empty truth -> 0.0 (callers averaging over customers should skip them, as
    `mean_metric` does). With more than `k` relevant items the ceiling is
    k / len(truth).
    """
    _check_k(k)
    if not truth:
        return 0.0
    return sum(_hits(truth, predicted, k)) / len(truth)


def hit_rate_at_k(truth: Collection[str], predicted: Sequence[str], k: int) -> float:
    """1.0 when at least one of the top `k` is relevant, else 0.0 (empty truth -> 0.0)."""
    _check_k(k)
    return 1.0 if any(_hits(truth, predicted, k)) else 0.0


def ndcg_at_k(truth: Collection[str], predicted: Sequence[str], k: int) -> float:
    """Normalised discounted cumulative gain with binary relevance, in [0, 1].

    DCG = sum over hit positions p (1-based) of 1 / log2(p + 1); the ideal DCG
    puts min(len(truth), k) hits first, so a customer with one relevant item
    scores 1.0 when it is ranked first. Empty truth -> 0.0.
    """
    _check_k(k)
    if not truth:
        return 0.0
    dcg = sum(1.0 / math.log2(p + 2) for p, hit in enumerate(_hits(truth, predicted, k)) if hit)
    ideal = sum(1.0 / math.log2(p + 2) for p in range(min(len(truth), k)))
    return dcg / ideal


def average_precision_at_k(truth: Collection[str], predicted: Sequence[str], k: int) -> float:
    """Average precision at `k` (the per-customer term of MAP@k), in [0, 1].

    Sum of precision@p at each hit position p <= k, divided by
    min(len(truth), k) so that a perfect list scores 1.0 even when the customer
    has more than `k` relevant items. Empty truth -> 0.0.
    """
    _check_k(k)
    if not truth:
        return 0.0
    total, hits = 0.0, 0
    for p, hit in enumerate(_hits(truth, predicted, k), start=1):
        if hit:
            hits += 1
            total += hits / p
    return total / min(len(truth), k)


def mean_metric(
    metric: Metric,
    truth: Mapping[str, Collection[str]],
    predictions: Mapping[str, Sequence[str]],
    k: int,
) -> float:
    """Mean of `metric` over the customers in `truth` that have relevant items.

    Customers with empty truth are skipped (they cannot be evaluated); a customer
    missing from `predictions` counts with an empty list (scores 0). No
    evaluable customer -> 0.0.
    """
    scores = [metric(items, predictions.get(c, ()), k) for c, items in truth.items() if items]
    return sum(scores) / len(scores) if scores else 0.0


def catalog_coverage(predictions: Iterable[Sequence[str]], catalog_size: int, k: int) -> float:
    """Share of the catalog that appears in at least one top-`k` list, in [0, 1].

    Items outside the catalog still count (callers pass lists drawn from it);
    the result is capped at 1.0. An empty catalog -> 0.0.
    """
    _check_k(k)
    if catalog_size <= 0:
        return 0.0
    shown = {item for ranked in predictions for item in ranked[:k]}
    return min(1.0, len(shown) / catalog_size)
