"""The anchor index answers exactly like the plain scan it replaces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.records import Item
from recsys.rules.boost import _Anchor, _AnchorIndex, _first_anchor

CATEGORIES = ["a", "a/b", "a/b/c", "a/bc", "d", "d/e", None]
ITEMS = [f"I{i}" for i in range(8)]


@st.composite
def anchors(draw: st.DrawFn) -> list[_Anchor]:
    chosen = draw(st.lists(st.sampled_from(ITEMS), unique=True, max_size=5))
    return [
        _Anchor(
            Item(item_id, category=draw(st.sampled_from(CATEGORIES))),
            "you bought",
            frozenset(draw(st.lists(st.sampled_from(ITEMS), max_size=3))),
            tuple(draw(st.lists(st.sampled_from([c for c in CATEGORIES if c]), max_size=2))),
        )
        for item_id in chosen
    ]


@settings(max_examples=300, deadline=None)
@given(anchors(), st.sampled_from(ITEMS), st.sampled_from(CATEGORIES))
def test_index_matches_scan(found: list[_Anchor], item_id: str, category: str | None) -> None:
    item = Item(item_id, category=category)
    assert _AnchorIndex(found).first(item) == _first_anchor(item, found)
