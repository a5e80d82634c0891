"""Records shared by the layers: the lazily materialised model output."""

from __future__ import annotations

import pytest

from recsys.records import ScoredItem, ScoredList
from recsys.rules.candidates import Candidate, CandidateList, candidates_from_scored


def test_scored_list_reads_as_the_list_of_records_it_stands_for() -> None:
    scored = ScoredList(["a", "b", "c"], [0.9, 0.5, 0.1])
    expected = [ScoredItem("a", 0.9), ScoredItem("b", 0.5), ScoredItem("c", 0.1)]
    assert len(scored) == 3
    assert list(scored) == expected and scored == expected
    assert scored[1] == expected[1] and scored[-1] == expected[-1]
    assert scored[:2] == expected[:2] and scored[5:] == []
    assert scored == ScoredList(["a", "b", "c"], [0.9, 0.5, 0.1])
    assert scored != ScoredList(["a", "b"], [0.9, 0.5]) and scored != "abc"
    with pytest.raises(ValueError):
        ScoredList(["a"], [])


def test_candidates_from_a_scored_list_are_made_on_demand() -> None:
    candidates = candidates_from_scored(ScoredList(["a", "b", "c"], [0.9, 0.5, 0.7]))
    assert isinstance(candidates, CandidateList)
    assert list(candidates) == [Candidate("a", 0.9), Candidate("b", 0.5), Candidate("c", 0.7)]
    assert candidates[1:] == [Candidate("b", 0.5), Candidate("c", 0.7)]
    assert candidates.best_score_from(1) == 0.7
    plain = candidates_from_scored([ScoredItem("a", 0.9)], source="popular")
    assert plain == [Candidate("a", 0.9, None, "popular")]
