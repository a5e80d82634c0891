"""Metric edge cases, each stated in the metric's docstring."""

from __future__ import annotations

import math

import pytest

from training.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hit_rate_at_k,
    mean_metric,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

ALL = [precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k, hit_rate_at_k]


@pytest.mark.parametrize("metric", ALL)
def test_empty_truth_scores_zero(metric: object) -> None:
    assert metric(set(), ["a", "b"], 2) == 0.0  # type: ignore[operator]


@pytest.mark.parametrize("metric", ALL)
def test_empty_predictions_score_zero(metric: object) -> None:
    assert metric({"a"}, [], 3) == 0.0  # type: ignore[operator]


@pytest.mark.parametrize("metric", ALL)
def test_k_must_be_positive(metric: object) -> None:
    with pytest.raises(ValueError):
        metric({"a"}, ["a"], 0)  # type: ignore[operator]


def test_precision_denominator_is_k() -> None:
    assert precision_at_k({"a"}, ["a"], 5) == pytest.approx(0.2)
    assert precision_at_k({"a", "b"}, ["a", "x", "b", "y"], 2) == 0.5


def test_recall_ceiling() -> None:
    assert recall_at_k({"a", "b", "c", "d"}, ["a", "b"], 2) == 0.5
    assert recall_at_k({"a"}, ["x", "a"], 2) == 1.0


def test_ndcg_values() -> None:
    assert ndcg_at_k({"a"}, ["a", "x"], 2) == 1.0
    assert ndcg_at_k({"a"}, ["x", "a"], 2) == pytest.approx(1 / math.log2(3))
    # ideal DCG is cut at k even with more relevant items
    assert ndcg_at_k({"a", "b", "c"}, ["a", "b"], 2) == 1.0


def test_duplicates_count_once() -> None:
    assert precision_at_k({"a"}, ["a", "a"], 2) == 0.5
    assert ndcg_at_k({"a", "b"}, ["a", "a"], 2) < 1.0


def test_average_precision() -> None:
    assert average_precision_at_k({"a", "b"}, ["a", "x", "b"], 3) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision_at_k({"a", "b", "c"}, ["a", "b"], 2) == 1.0


def test_hit_rate() -> None:
    assert hit_rate_at_k({"b"}, ["a", "b"], 2) == 1.0
    assert hit_rate_at_k({"b"}, ["a", "b"], 1) == 0.0


def test_mean_skips_empty_truth_and_missing_predictions_score_zero() -> None:
    truth = {"u1": {"a"}, "u2": set(), "u3": {"b"}}
    predictions = {"u1": ["a"], "u2": ["a"]}
    assert mean_metric(recall_at_k, truth, predictions, 1) == 0.5
    assert mean_metric(recall_at_k, {}, predictions, 1) == 0.0


def test_catalog_coverage() -> None:
    assert catalog_coverage([["a", "b", "c"], ["a", "d"]], 10, 2) == pytest.approx(0.3)
    assert catalog_coverage([], 10, 2) == 0.0
    assert catalog_coverage([["a"]], 0, 2) == 0.0
    assert catalog_coverage([["a", "b"]], 1, 2) == 1.0
