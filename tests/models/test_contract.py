"""One contract-test mixin run against every model, as in implicit's recommender_base_test.

The data is a checkerboard: customer u bought every item of the same parity as u
except item u itself. The known answer: a personalised model recommends items of
the customer's parity, and similar items share the item's parity.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from recsys.matrix import InteractionMatrix, MatrixParams, build_matrix
from recsys.models import (
    ALSRecommender,
    BPRRecommender,
    HybridRecommender,
    ItemKNNRecommender,
    PopularRecommender,
    Recommender,
    RepurchaseRecommender,
    create_model,
)
from recsys.models.als import ALSParams
from recsys.models.base import ModelStateError
from recsys.models.bpr import BPRParams
from recsys.models.hybrid import HybridParams
from recsys.models.item_knn import ItemKNNParams
from recsys.records import ScoredItem

SIZE = 40
NOW = datetime(2026, 11, 22, 10, 0, 0)


def checkerboard_purchases(size: int = SIZE) -> pl.DataFrame:
    rows = []
    for u in range(size):
        for j in range(u % 2, size, 2):
            if j != u:
                rows.append((f"c{u}", f"i{j}", f"o{u}-{j}", 1.0 + (j % 3), NOW - timedelta(days=j)))
    return pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.Utf8,
            "item_id": pl.Utf8,
            "order_id": pl.Utf8,
            "quantity": pl.Float64,
            "purchased_at": pl.Datetime("us"),
        },
        orient="row",
    )


def parity(external_id: str) -> int:
    return int(external_id[1:]) % 2


def assert_same_ranking(got: Sequence[ScoredItem], want: Sequence[ScoredItem]) -> None:
    """Same scores in the same order; tied items (the checkerboard has many) may swap."""
    assert len(got) == len(want)
    assert np.allclose([r.score for r in got], [r.score for r in want], atol=1e-5)
    scores = {r.item_id: r.score for r in want}
    for r in got:
        if r.item_id in scores:
            assert r.score == pytest.approx(scores[r.item_id], abs=1e-5)


@pytest.fixture(scope="module")
def interactions() -> InteractionMatrix:
    return build_matrix(checkerboard_purchases(), MatrixParams(confidence="binary"), now=NOW)


class RecommenderContract:
    """Mixin: subclasses supply `make_model`; every test runs against it."""

    personalised: ClassVar[bool] = True
    # fold-in reaches beyond the history's own items (false for repurchase/popular)
    fold_in_generalises: ClassVar[bool] = True

    @classmethod
    def make_model(cls) -> Recommender[Any]:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, interactions: InteractionMatrix) -> Recommender[Any]:
        model = cls.make_model()
        model.fit(interactions)
        return model

    def test_recommend_shape_and_order(self, model: Recommender[Any]) -> None:
        recs = model.recommend("c0", 10)
        assert len(recs) == 10
        ids = [r.item_id for r in recs]
        assert len(set(ids)) == 10
        assert all(i.startswith("i") for i in ids)
        scores = [r.score for r in recs]
        assert scores == sorted(scores, reverse=True)

    def test_known_answer_parity(self, model: Recommender[Any]) -> None:
        if not self.personalised:
            pytest.skip("not personalised")
        for customer in ("c0", "c1", "c6", "c13"):
            recs = model.recommend(customer, 10)
            assert {parity(r.item_id) for r in recs} == {parity(customer)}, customer

    def test_already_bought_items_are_not_filtered(self, model: Recommender[Any]) -> None:
        if not self.personalised:
            pytest.skip("not personalised")
        bought = {f"i{j}" for j in range(0, SIZE, 2)} - {"i0"}
        recs = model.recommend("c0", len(bought))
        assert bought & {r.item_id for r in recs}

    def test_exclude_seen(self, model: Recommender[Any]) -> None:
        bought = {f"i{j}" for j in range(1, SIZE, 2)} - {"i3"}
        recs = model.recommend("c3", 5, exclude_seen=True)
        assert len(recs) == 5
        assert not bought & {r.item_id for r in recs}

    def test_unknown_customer_gets_popular(self, model: Recommender[Any]) -> None:
        assert not model.knows("nobody")
        assert model.knows("c0")
        assert model.recommend("nobody", 5) == model.popular(5)

    def test_unknown_customer_with_history_is_folded_in(self, model: Recommender[Any]) -> None:
        history = ["i2", "i4", "i6", "i8", "unknown"]
        recs = model.recommend("new-customer", 6, history=history)
        assert len(recs) == 6
        if self.fold_in_generalises:
            assert {parity(r.item_id) for r in recs} == {0}

    def test_batch_matches_single(self, model: Recommender[Any]) -> None:
        batch = model.recommend_batch(["c0", "c5", "nobody", "c0"], 8)
        assert set(batch) == {"c0", "c5", "nobody"}
        for customer in ("c0", "c5"):
            assert_same_ranking(batch[customer], model.recommend(customer, 8))
        assert batch["nobody"] == model.popular(8)

    def test_similar_items(self, model: Recommender[Any]) -> None:
        similar = model.similar_items("i4", 5)
        assert 0 < len(similar) <= 5
        assert "i4" not in {s.item_id for s in similar}
        assert {parity(s.item_id) for s in similar} == {0}
        assert model.similar_items("not-an-item", 5) == []

    def test_popular(self, model: Recommender[Any]) -> None:
        popular = model.popular(7)
        assert len(popular) == 7
        scores = [p.score for p in popular]
        assert scores == sorted(scores, reverse=True)

    def test_zero_n(self, model: Recommender[Any]) -> None:
        assert model.recommend("c0", 0) == []
        assert model.recommend_batch(["c0"], 0) == {"c0": []}

    def test_more_than_catalog(self, model: Recommender[Any]) -> None:
        recs = model.recommend("c2", SIZE + 10)
        assert len(recs) == SIZE  # every item once, padding included

    def test_round_trip_arrays(self, model: Recommender[Any]) -> None:
        arrays = model.to_arrays()
        assert all(a.dtype != object for a in arrays.values())
        restored = type(model).from_arrays(
            model.params, arrays, model.data.user_ids, model.data.item_ids
        )
        for customer in ("c0", "c7"):
            assert [r.item_id for r in restored.recommend(customer, 6)] == [
                r.item_id for r in model.recommend(customer, 6)
            ]
        assert restored.params == model.params

    def test_precomputed_lists_answer_as_scoring_does(self, model: Recommender[Any]) -> None:
        arrays = model.to_arrays()
        served = type(model).from_arrays(
            model.params, arrays, model.data.user_ids, model.data.item_ids
        )
        served.precompute(10, batch=7)  # several batches, the last one short
        if not self.personalised:
            assert served.precomputed == 0
            return
        assert served.precomputed == 10
        customers = ["c0", "c3", "c8", "c39"]
        for customer in customers:
            for n in (4, 10, 12):  # 12 > k: scored, not read
                assert_same_ranking(served.recommend(customer, n), model.recommend(customer, n))
        batch = served.recommend_batch(customers, 6)
        for customer in customers:
            assert_same_ranking(batch[customer], model.recommend(customer, 6))
        # the batch path's shortcut for full rows answers as the one-customer path; a
        # row with empty slots (few scorable items) is padded the same way by both
        assert served._lists is not None
        served._lists.ids[1, 5:] = -1
        served._lists.scores[1, 5:] = 0.0
        asked = ["c1", "c2", "c1", "nobody", "c39"]
        batch = served.recommend_batch(asked, 10)
        assert set(batch) == set(asked)
        for customer in asked:
            assert batch[customer] == served.recommend(customer, 10)
        assert [r.item_id for r in batch["c1"][:5]] == [
            r.item_id for r in model.recommend("c1", 5)
        ]
        # a fresh order makes the stored list stale: the customer is scored again
        fresh = served.recommend("c0", 4, history=["i1"])
        assert fresh == model.recommend("c0", 4, history=["i1"])
        restored = type(model).from_arrays(
            model.params, served.to_arrays(), model.data.user_ids, model.data.item_ids
        )
        assert restored.precomputed == 10
        assert restored.recommend("c3", 5) == served.recommend("c3", 5)

    def test_corrupt_precomputed_lists_are_refused(self, model: Recommender[Any]) -> None:
        if not self.personalised:
            pytest.skip("not personalised")
        arrays = dict(model.to_arrays())
        n_users, n_items = len(model.data.user_ids), len(model.data.item_ids)
        arrays["candidates.ids"] = np.full((n_users, 3), n_items, dtype=np.int32)
        arrays["candidates.scores"] = np.zeros((n_users, 3), dtype=np.float32)
        with pytest.raises(ModelStateError, match="outside the catalog"):
            type(model).from_arrays(
                model.params, arrays, model.data.user_ids, model.data.item_ids
            )
        arrays["candidates.scores"] = np.zeros((n_users, 2), dtype=np.float32)
        with pytest.raises(ModelStateError, match="candidates"):
            type(model).from_arrays(
                model.params, arrays, model.data.user_ids, model.data.item_ids
            )

    def test_unknown_param_is_refused(self, model: Recommender[Any]) -> None:
        with pytest.raises(ValueError, match="unknown parameter"):
            create_model(model.name, {"no_such_param": 1})

    def test_unfitted_model_says_so(self) -> None:
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make_model().recommend("c0", 3)


class TestALS(RecommenderContract):
    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return ALSRecommender(
            ALSParams(factors=4, regularization=0.05, iterations=20), num_threads=1
        )


class TestBPR(RecommenderContract):
    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return BPRRecommender(
            BPRParams(factors=8, learning_rate=0.05, iterations=200), num_threads=1
        )


class TestItemKNNCosine(RecommenderContract):
    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return ItemKNNRecommender(ItemKNNParams(neighbours=20), num_threads=1)


class TestItemKNNBM25(RecommenderContract):
    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return ItemKNNRecommender(ItemKNNParams(similarity="bm25", neighbours=20), num_threads=1)


class TestPopular(RecommenderContract):
    personalised = False
    fold_in_generalises = False

    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return PopularRecommender()


class TestRepurchase(RecommenderContract):
    fold_in_generalises = False

    def test_fold_in_ranks_the_history_first(self, model: Recommender[Any]) -> None:
        recs = model.recommend("new-customer", 6, history=["i2", "i4", "i4", "unknown"])
        assert [r.item_id for r in recs[:2]] == ["i4", "i2"]

    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return RepurchaseRecommender()

    def test_ranks_own_most_ordered_first(self) -> None:
        frame = checkerboard_purchases()
        extra = frame.filter((pl.col("customer_id") == "c0") & (pl.col("item_id") == "i8"))
        frame = pl.concat([frame, extra.with_columns(order_id=pl.lit("again"))])
        model = RepurchaseRecommender()
        model.fit(build_matrix(frame, MatrixParams(confidence="orders")))
        assert model.recommend("c0", 1)[0].item_id == "i8"


class TestHybrid(RecommenderContract):
    @classmethod
    def make_model(cls) -> Recommender[Any]:
        return HybridRecommender(
            HybridParams(factors=4, regularization=0.05, iterations=20), num_threads=1
        )
