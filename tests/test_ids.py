"""IdMap: the two-way map between external ids and matrix indices."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.ids import IdMap


@given(st.lists(st.text(min_size=0, max_size=12), unique=True, max_size=60))
def test_every_id_maps_to_its_index_and_back(ids: list[str]) -> None:
    mapping = IdMap(ids)
    assert len(mapping) == len(ids)
    assert mapping.ids == tuple(ids)
    for i, external in enumerate(ids):
        assert mapping.index(external) == i
        assert mapping.get(external) == i
        assert external in mapping
        assert mapping.external(i) == external


@given(st.lists(st.text(max_size=8), unique=True, max_size=30), st.text(max_size=8))
def test_unknown_ids_are_not_found(ids: list[str], other: str) -> None:
    mapping = IdMap(ids)
    if other not in ids:
        assert mapping.get(other) is None
        assert other not in mapping
        with pytest.raises(KeyError):
            mapping.index(other)


def test_unsorted_prefixes_and_non_ascii() -> None:
    ids = ["z", "ab", "a", "é", "a\u00e9", "Z", ""]
    mapping = IdMap(ids)
    assert [mapping.index(i) for i in ids] == list(range(len(ids)))
    assert mapping.get("b") is None and mapping.get("a\x00") is None
    assert mapping.indices(["a", "nope", "z"]).tolist() == [2, 0]
    assert mapping.to_array().tolist() == ids


def test_duplicates_are_refused_sorted_or_not() -> None:
    with pytest.raises(ValueError, match="unique"):
        IdMap(["b", "a", "b"])
    with pytest.raises(ValueError, match="unique"):
        IdMap(["a", "a"])
    assert IdMap.from_iterable(["b", "a", "b"]).ids == ("b", "a")


def test_ids_with_nul_fall_back_to_a_dict() -> None:
    mapping = IdMap(["a\x00", "a", "b"])
    assert mapping.index("a\x00") == 0 and mapping.index("a") == 1
    assert "c" not in mapping and len(mapping) == 3


def test_lone_surrogates_round_trip() -> None:
    mapping = IdMap(["\ud800x", "a"])
    assert mapping.index("\ud800x") == 0 and mapping.ids == ("\ud800x", "a")


def test_equality_and_empty() -> None:
    assert IdMap(["x", "y"]) == IdMap(("x", "y")) != IdMap(["y", "x"])
    empty = IdMap([])
    assert len(empty) == 0 and "x" not in empty and empty.indices(["x"]).size == 0
    assert isinstance(empty.to_array(), np.ndarray)


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=8),
                unique=True, max_size=30))
def test_utf8_round_trip(ids: list[str]) -> None:
    mapping = IdMap(ids)
    again = IdMap.from_utf8(mapping.utf8())
    assert again == mapping
    assert [again.get(i) for i in ids] == list(range(len(ids)))


def test_utf8_refuses_nul_and_duplicates() -> None:
    with pytest.raises(ValueError, match="NUL"):
        IdMap(["a\x00"]).utf8()
    with pytest.raises(ValueError, match="unique"):
        IdMap.from_utf8(np.array([b"b", b"a", b"b"]))


@given(
    st.lists(st.text(max_size=8), unique=True, max_size=40),
    st.lists(st.text(max_size=10), max_size=20),
)
def test_lookup_agrees_with_get(ids: list[str], asked: list[str]) -> None:
    """The vectorised lookup (bytes array or the NUL dict) answers as `get` does."""
    for mapping in (IdMap(ids), IdMap([*ids, "nul\x00"])):
        queries = [*asked, *ids[:5], "nul\x00", "a\x00"]
        expected = [-1 if (i := mapping.get(q)) is None else i for q in queries]
        found = mapping.lookup(queries)
        assert found.dtype == np.int64
        assert found.tolist() == expected
