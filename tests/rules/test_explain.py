"""`explain`: the pipeline's optional record of removals and the sentences made from it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.rules import run_pipeline
from recsys.rules.contact import ContactDecision
from recsys.rules.explain import explain_removals, explain_suppression
from recsys.rules.pipeline import Removal

from ._data import CATALOG, NOW, WEEK_WAIT, buy, cands, ctx, ids


def _explained(history, candidates, **kwargs):  # type: ignore[no-untyped-def]
    wanted = ("basket", "placement", "config")
    context = ctx(history, **{k: v for k, v in kwargs.items() if k in wanted})
    removals: list[Removal] = []
    offers = run_pipeline(candidates, context, limit=kwargs.get("limit", 3), removals=removals)
    return offers, {e.item_id: e for e in explain_removals(removals, context)}


def test_the_tv_complaint_explained() -> None:
    """A week after a TV: the bought TV, the other TVs and the fridge each say why they left."""
    offers, why = _explained(
        [buy("tv-55", 7)], cands("tv-43", "tv-65", "tv-55", "novel", "mount", "fridge", "hdmi")
    )
    assert ids(offers.items) == ["mount", "novel", "hdmi"]
    assert set(why) == {"tv-43", "tv-65", "tv-55", "fridge"}
    assert why["fridge"].rule == "eligibility" and why["fridge"].reason == "out_of_stock"
    assert why["tv-55"].reason == "already_bought"
    assert why["tv-55"].detail.startswith(f"bought on {(NOW - timedelta(days=7)).date()}")
    # The shipped rules make electronics/tv durable for 730 days.
    until = (NOW - timedelta(days=7) + timedelta(days=730)).replace(tzinfo=None)
    for tv in ("tv-43", "tv-65"):
        assert why[tv].rule == "durable_cooldown" and why[tv].reason == "cooldown"
        assert why[tv].until == until
        assert f"cooldown until {until.date()}" in why[tv].detail
        assert "electronics/tv" in why[tv].detail


def test_a_consumable_not_yet_due_says_when_it_is() -> None:
    # coffee capsules: consumable every 30 days in the shipped rules
    _, why = _explained([buy("coffee", 3)], cands("coffee", "mug"), config=WEEK_WAIT)
    assert why["coffee"].reason == "already_bought"
    bought = (NOW - timedelta(days=3)).replace(tzinfo=None)
    due = bought + timedelta(days=30)
    # a newsletter looking 30 days ahead that brings nothing back in the week after it
    # was bought shows the capsules from then (the shipped one shows them now)
    assert "coffee" not in _explained([buy("coffee", 3)], cands("coffee", "mug"))[1]
    shown_from = bought + timedelta(days=7)
    assert why["coffee"].until == shown_from
    assert f"restock due {due.date()}, in the newsletter from {shown_from.date()}" in (
        why["coffee"].detail
    )
    _, why = _explained([buy("coffee", 3)], cands("coffee"), placement="order_confirmation")
    assert why["coffee"].until == due and why["coffee"].detail.endswith(f"due {due.date()}")


def test_a_habit_and_a_placement_for_new_items_are_explained() -> None:
    # bought on two days 20 days apart: back after half the customer's own gap (shipped rules)
    history = [buy("novel", 30), buy("novel", 4)]
    _, why = _explained(history, cands("novel", "mug"), placement="order_confirmation")
    due = (NOW - timedelta(days=4) + timedelta(days=13)).replace(tzinfo=None)
    assert why["novel"].until == due
    assert f"bought regularly, next due {due.date()}" in why["novel"].detail
    _, why = _explained(history, cands("novel", "mug"), placement="anniversary")
    assert why["novel"].until is None and "anniversary offers only new items" in why["novel"].detail


def test_basket_and_duplicates_are_explained() -> None:
    _, why = _explained(
        [],
        cands("bike", "lock", "lock", "mug"),
        basket=["bike"],
        placement="order_confirmation",
    )
    assert why["bike"].reason == "in_basket"
    assert why["lock"].reason == "duplicate"


def test_suppression_lists_what_would_have_been_served() -> None:
    served = cands("mug", "novel")
    capped = explain_suppression(
        served, ContactDecision(False, "cap_reached", datetime(2026, 11, 25, 9))
    )
    assert [(e.item_id, e.rule, e.reason) for e in capped] == [
        ("mug", "contact_policy", "cap_reached"),
        ("novel", "contact_policy", "cap_reached"),
    ]
    assert capped[0].until == datetime(2026, 11, 25, 9)
    assert "2026-11-25" in capped[0].detail
    opted = explain_suppression(served, ContactDecision(False, "opted_out"))
    assert {e.reason for e in opted} == {"opted_out"} and opted[0].until is None


ITEMS = sorted(CATALOG)


@settings(max_examples=60, deadline=None)
@given(
    order=st.lists(st.sampled_from(ITEMS), min_size=0, max_size=60),
    bought=st.lists(st.tuples(st.sampled_from(ITEMS), st.integers(0, 800)), max_size=6),
    limit=st.integers(0, 6),
    exhaustive=st.booleans(),
)
def test_recording_changes_nothing_and_matches_the_counts(
    order: list[str], bought: list[tuple[str, int]], limit: int, exhaustive: bool
) -> None:
    """The same items with and without the record; one record per counted removal."""
    context = ctx([buy(item, days) for item, days in bought])
    fillers = cands("mug", "novel", "fridge", "tv-43", source="popular")
    plain = run_pipeline(
        cands(*order), context, limit=limit, fillers=fillers, exhaustive=exhaustive
    )
    removals: list[Removal] = []
    recorded = run_pipeline(
        cands(*order), context, limit=limit, fillers=fillers, exhaustive=exhaustive,
        removals=removals,
    )
    assert recorded.items == plain.items
    assert recorded.removed == plain.removed
    per_rule = Counter(r.rule for r in removals)
    for rule, count in plain.removed.items():
        if rule != "limit":
            assert per_rule[rule] == count, rule
    # The filters decide per item, so an item one of them removed is never served.
    served = set(ids(plain.items))
    assert not {r.candidate.item_id for r in removals if r.rule != "dedupe"} & served
