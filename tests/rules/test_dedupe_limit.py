from __future__ import annotations

import pytest

from recsys.rules import Candidate, dedupe, limit_to

from ._data import cands, ctx, ids


def test_dedupe_keeps_the_first_copy() -> None:
    result = dedupe([Candidate("a", 3.0, "x"), Candidate("b", 2.0), Candidate("a", 1.0)], ctx())
    assert result == [Candidate("a", 3.0, "x"), Candidate("b", 2.0)]


def test_limit() -> None:
    assert ids(limit_to(2)(cands("a", "b", "c"), ctx())) == ["a", "b"]
    assert limit_to(0)(cands("a"), ctx()) == []
    assert limit_to(3).__name__ == "limit"
    with pytest.raises(ValueError, match="limit"):
        limit_to(-1)
