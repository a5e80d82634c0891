"""The norm-pruned top-k gives the full scan's answer while scoring fewer items."""

from __future__ import annotations

import numpy as np
import pytest
from implicit.cpu.topk import topk

from recsys.models.topk import PRUNE_MIN_USERS, FactorTopK, NormPrunedTopK


def _skewed(n_items: int, factors: int, seed: int) -> np.ndarray:
    """Item factors whose norms fall off like ALS's on retail data (popular items large)."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / (1.0 + np.arange(n_items)) ** 1.2
    items = rng.normal(size=(n_items, factors)) * scale[:, None]
    return np.asarray(items[rng.permutation(n_items)], dtype=np.float32)


def _assert_same_top(
    got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]
) -> None:
    """Same items in the same order (random float scores have no ties), same scores."""
    assert got[0].tolist() == want[0].tolist()
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k", [1, 10, 40])
def test_pruned_search_matches_the_full_scan(k: int) -> None:
    items = _skewed(3000, 16, seed=k)
    users = np.random.default_rng(100 + k).normal(size=(500, 16)).astype(np.float32)
    index = NormPrunedTopK(items, first_head=64)
    got = index.topk(users, k)
    _assert_same_top(got, topk(items, users, k))
    # the skewed norms let most customers stop at a head of the catalog
    assert index.scored_pairs < 0.5 * users.shape[0] * items.shape[0]


def test_customers_the_bound_cannot_settle_still_get_the_exact_list() -> None:
    """Anti-aligned and zero customers, k beyond the first head, k beyond the catalog."""
    items = _skewed(1000, 8, seed=3)
    rng = np.random.default_rng(4)
    users = rng.normal(size=(50, 8)).astype(np.float32)
    users[:10] = -users[:10] * 1e-3
    users[10] = 0.0
    index = NormPrunedTopK(items, first_head=16)
    for k in (5, 20, 300, 2000):
        index.scored_pairs = 0
        got = index.topk(users, k)
        # each round scores only the items the earlier ones did not: never more than a scan
        assert index.scored_pairs <= 50 * 1000
        want = topk(items, users, min(k, 1000))
        assert got[0].shape == (50, min(k, 1000))
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)


def test_small_batches_scan_and_large_ones_prune() -> None:
    items = _skewed(2000, 8, seed=5)
    scorer = FactorTopK(items, first_head=32)
    rng = np.random.default_rng(6)
    few = rng.normal(size=(3, 8)).astype(np.float32)
    many = rng.normal(size=(PRUNE_MIN_USERS, 8)).astype(np.float32)
    _assert_same_top(scorer(few, 7), topk(items, few, 7))
    assert scorer._pruned is None  # no sorted copy for an API request
    _assert_same_top(scorer(many, 7), topk(items, many, 7))
    assert scorer._pruned is not None and scorer._pruned.scored_pairs < many.shape[0] * 2000


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        NormPrunedTopK(np.ones((4, 2), dtype=np.float32), growth=1)


def test_a_saved_index_prunes_every_call_and_matches_the_scan() -> None:
    items = _skewed(2000, 8, seed=7)
    built = FactorTopK(items, first_head=32)
    arrays = built.to_arrays("als")
    assert sorted(arrays["als.norm_order"].tolist()) == list(range(2000))
    served = FactorTopK.from_arrays(items, arrays, "als", first_head=32)
    few = np.random.default_rng(8).normal(size=(20, 8)).astype(np.float32)
    assert few.shape[0] < PRUNE_MIN_USERS
    _assert_same_top(served(few, 15), topk(items, few, 15))
    # a request of a few users searches the saved index too, scoring less than a scan
    assert served._pruned is not None and 0 < served._pruned.scored_pairs < 20 * 2000


def test_an_index_that_does_not_fit_the_factors_is_refused() -> None:
    items = _skewed(100, 4, seed=9)
    arrays = FactorTopK(items).to_arrays("als")
    twice = dict(arrays, **{"als.norm_order": np.zeros(100, dtype=np.int32)})
    with pytest.raises(ValueError, match="permutation"):
        FactorTopK.from_arrays(items, twice, "als")
    short = dict(arrays, **{"als.items_by_norm": arrays["als.items_by_norm"][:50]})
    with pytest.raises(ValueError, match="shape"):
        FactorTopK.from_arrays(items, short, "als")
    # an artifact from before the index was saved still loads (and builds it on demand)
    assert FactorTopK.from_arrays(items, {}, "als")._pruned is None
