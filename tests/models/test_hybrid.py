"""The hybrid's fast top-n (ALS top-k plus bought items) against its dense definition."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.ids import IdMap
from recsys.matrix import InteractionMatrix
from recsys.models.hybrid import HybridParams, HybridRecommender, repurchase_habit


def random_interactions(n_users: int, n_items: int, density: float, seed: int) -> InteractionMatrix:
    rng = np.random.default_rng(seed)
    orders = sp.random(
        n_users, n_items, density=density, format="csr", dtype=np.float32, random_state=rng
    )
    orders.data = rng.integers(1, 6, size=orders.nnz).astype(np.float32)
    binary = orders.copy()
    binary.data[:] = 1.0
    return InteractionMatrix(
        binary,
        IdMap.from_iterable(f"u{u:04d}" for u in range(n_users)),
        IdMap.from_iterable(f"i{i:04d}" for i in range(n_items)),
        orders,
    )


@pytest.mark.parametrize(
    ("n_users", "n_items", "density", "n", "seed"),
    [(120, 300, 0.05, 10, 1), (80, 60, 0.3, 25, 2), (50, 40, 0.5, 40, 3), (64, 500, 0.01, 200, 4)],
)
def test_fast_top_n_equals_the_dense_blend(
    n_users: int, n_items: int, density: float, n: int, seed: int
) -> None:
    model = HybridRecommender(
        HybridParams(factors=8, iterations=5, habit_floor=0.3, repurchase_weight=1.5),
        num_threads=1,
    )
    model.fit(random_interactions(n_users, n_items, density, seed))
    users = np.arange(n_users, dtype=np.int32)
    fast_ids, fast_scores = model._score_users(users, n, False)
    dense_ids, dense_scores = model._score_users_dense(users, n, False)
    assert fast_ids.shape == dense_ids.shape == (n_users, min(n, n_items))
    np.testing.assert_allclose(fast_scores, dense_scores, rtol=1e-5, atol=1e-6)
    # ids agree wherever the scores are not (near-)tied
    gaps = np.abs(np.diff(dense_scores, axis=1))
    clear = np.ones_like(dense_ids, dtype=bool)
    clear[:, 1:] &= gaps > 1e-5
    clear[:, :-1] &= gaps > 1e-5
    assert np.array_equal(fast_ids[clear], dense_ids[clear])


def test_bought_items_outside_als_top_are_found() -> None:
    """A habit item ALS ranks low still leads the list through its boost."""
    model = HybridRecommender(HybridParams(factors=8, iterations=5, habit_floor=1.0), num_threads=1)
    interactions = random_interactions(40, 200, 0.05, 5)
    model.fit(interactions)
    user = 3
    bought = interactions.order_counts[user].indices
    ids, _ = model._score_users(np.asarray([user], dtype=np.int32), 5, False)
    assert set(ids[0][: min(5, len(bought))]) <= set(bought)


def test_fold_in_top_n_equals_the_dense_blend() -> None:
    model = HybridRecommender(HybridParams(factors=8, iterations=5), num_threads=1)
    interactions = random_interactions(60, 150, 0.08, 6)
    model.fit(interactions)
    for user in (0, 7, 33):
        row = interactions.order_counts[user]
        ids, scores = model._score_row(row, 12, False)
        user_vector = np.atleast_2d(model.als.recalculate_user(0, row)).astype(np.float32)
        counts = sp.csr_matrix(row, dtype=np.float32)
        dense = model._blend(user_vector, counts, repurchase_habit(counts))[0]
        want = np.argsort(-dense, kind="stable")[:12]
        np.testing.assert_allclose(scores, dense[want], rtol=1e-5, atol=1e-6)
        assert set(ids[:8]) == set(want[:8]) or np.allclose(dense[ids], dense[want], atol=1e-5)
