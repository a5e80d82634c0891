"""The vectorised significance test of learned complements agrees with scipy's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import hypergeom

from recsys.rules.learned_complements import hypergeom_sf


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    total = draw(st.integers(2, 2_000_000))
    size = draw(st.integers(1, 30))
    good = np.array(draw(st.lists(st.integers(1, total), min_size=size, max_size=size)))
    drawn = np.array(draw(st.lists(st.integers(1, total), min_size=size, max_size=size)))
    top = np.minimum(good, drawn)
    # any support from 1 to the most possible, below the mean and above it
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=size, max_size=size)))
    support = np.maximum(1, np.round(share * top)).astype(np.int64)
    return total, support.astype(float), good.astype(float), drawn.astype(float)


@settings(max_examples=200, deadline=None)
@given(_pairs(), st.sampled_from([0.001, 0.05]))
def test_upper_tail_matches_scipy(pairs: tuple[int, np.ndarray, np.ndarray, np.ndarray],
                                  threshold: float) -> None:
    total, support, good, drawn = pairs
    ours = hypergeom_sf(support, total, good, drawn, near=threshold)
    theirs = hypergeom.sf(support - 1, total, good, drawn)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-300)
    assert ((ours <= threshold) == (theirs <= threshold)).all()


def test_pairs_the_lift_filter_keeps_agree_closely() -> None:
    rng = np.random.default_rng(3)
    total = 100_000
    good = rng.integers(5, 5_000, 5_000).astype(float)
    drawn = rng.integers(5, 5_000, 5_000).astype(float)
    support = np.minimum(np.ceil(good * drawn / total * rng.uniform(1.5, 8.0, 5_000)),
                         np.minimum(good, drawn))
    ours = hypergeom_sf(support, total, good, drawn, near=0.001)
    theirs = hypergeom.sf(support - 1, total, good, drawn)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7)
