"""Property tests: the promises of the SPEC hold for any history, candidates and fillers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.records import Item, Purchase
from recsys.rules import (
    Candidate,
    CategoryBehaviour,
    OfferList,
    RuleContext,
    resolve_behaviour,
    run_pipeline,
)
from recsys.rules.candidates import CandidateList
from recsys.rules.hierarchy import is_under

from ._data import CATALOG, NOW, SHIPPED, buy, ctx

ITEM_IDS = sorted(CATALOG)
PROPOSABLE = [*ITEM_IDS, "ghost-1", "ghost-2"]  # ids the catalog does not know

# Learned behaviours for the categories the shipped overrides leave open.
behaviour_choice = st.sampled_from(
    [
        None,
        CategoryBehaviour("", "durable", 50),
        CategoryBehaviour("", "consumable", 50, interval_days=1),
        CategoryBehaviour("", "consumable", 50, interval_days=45),
        CategoryBehaviour("", "regular", 50),
    ]
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Candidate], RuleContext, int, list[Candidate]]:
    stock = draw(st.lists(st.booleans(), min_size=len(ITEM_IDS), max_size=len(ITEM_IDS)))
    catalog = {i: replace(CATALOG[i], in_stock=s) for i, s in zip(ITEM_IDS, stock, strict=True)}
    learned: dict[str, CategoryBehaviour] = {}
    for category in ("books/fiction", "books/cooking", "home/kitchen"):
        template = draw(behaviour_choice)
        if template is not None:
            learned[category] = replace(template, category=category)
    purchases = draw(
        st.lists(
            st.builds(
                buy,
                st.sampled_from(ITEM_IDS),
                st.floats(min_value=-30, max_value=1200, allow_nan=False),
                st.sampled_from([1, 1, 1, 2, -1]),
            ),
            max_size=12,
        )
    )
    basket = draw(st.lists(st.sampled_from(PROPOSABLE), max_size=3))
    scored = st.builds(
        Candidate,
        st.sampled_from(PROPOSABLE),
        st.floats(min_value=-5, max_value=5, allow_nan=False),
    )
    candidates = draw(st.lists(scored, max_size=25))
    fillers = [replace(c, source="popular") for c in draw(st.lists(scored, max_size=10))]
    limit = draw(st.integers(min_value=0, max_value=8))
    context = ctx(purchases, basket=basket, catalog=catalog, behaviours=learned)
    return candidates, context, limit, fillers


def _kept_and_last_purchase(purchases: Sequence[Purchase], item_id: str) -> tuple[bool, datetime]:
    """Whether any unit of `item_id` is kept at NOW, and when it was last bought."""
    lines = [p for p in purchases if p.item_id == item_id and p.purchased_at <= NOW]
    bought = sum(p.quantity for p in lines if p.quantity > 0)
    returned = -sum(p.quantity for p in lines if p.quantity < 0)
    last = max(p.purchased_at for p in lines if p.quantity > 0)
    return bought - returned > 0, last


def _check(
    candidates: list[Candidate],
    ctx_: RuleContext,
    limit: int,
    fillers: list[Candidate],
    offers: OfferList,
) -> None:
    served = offers.item_ids
    config = ctx_.config.categories
    # never more than limit, never a duplicate, only what was proposed
    assert len(served) <= limit
    assert len(served) == len(set(served))
    assert set(served) <= {c.item_id for c in candidates} | {f.item_id for f in fillers}
    assert all(c.reason for c in offers.items)
    bought_before_now = [p for p in ctx_.purchases if p.purchased_at <= NOW and p.quantity > 0]
    for item_id in served:
        item = ctx_.catalog.get(item_id)
        # never unknown, never out of stock, never in the basket
        assert item is not None and item.in_stock
        assert item_id not in ctx_.basket
        # never something already bought, unless due again within the placement's
        # horizon (and not too soon after the purchase): a consumable after its
        # interval, or a habit (bought on several days) after the share of the
        # customer's own median gap
        days = sorted({p.purchased_at.date() for p in bought_before_now if p.item_id == item_id})
        if days:
            last = max(p.purchased_at for p in bought_before_now if p.item_id == item_id)
            ahead = NOW + timedelta(days=config.horizon_days(ctx_.placement)) - last
            behaviour = resolve_behaviour(item.category, ctx_.behaviours, config)
            due: list[float] = []
            if behaviour is not None and behaviour.kind == "consumable":
                assert behaviour.interval_days is not None
                due.append(behaviour.interval_days * config.restock_due_share)
            overridden = behaviour is not None and behaviour.source == "override"
            durable = behaviour is not None and behaviour.kind == "durable"
            if not overridden and not durable and len(days) >= config.personal_min_days >= 2:
                gaps = sorted((b - a).days for a, b in pairwise(days))
                middle = len(gaps) // 2
                gap = gaps[middle] if len(gaps) % 2 else (gaps[middle - 1] + gaps[middle]) / 2
                due.append(max(gap, 1.0) * config.personal_due_share)
            # ...and brought forward by the horizon only restock_wait_days after buying
            elapsed = NOW - last
            assert any(
                elapsed >= timedelta(days=d)
                or (
                    ahead >= timedelta(days=d)
                    and elapsed >= timedelta(days=config.restock_wait_days)
                )
                for d in due
            )
        # never in a durable category inside its cooldown, nor in a basket durable's category
        for owned_id in {p.item_id for p in bought_before_now} | set(ctx_.basket):
            owned: Item | None = ctx_.catalog.get(owned_id)
            if owned is None:
                continue
            behaviour = resolve_behaviour(owned.category, ctx_.behaviours, config)
            if behaviour is None or behaviour.kind != "durable" or not item.category:
                continue
            if not is_under(item.category, behaviour.category):
                continue
            assert owned_id not in ctx_.basket
            kept, last_owned = _kept_and_last_purchase(ctx_.purchases, owned_id)
            assert behaviour.cooldown_days is not None
            assert not kept or NOW - last_owned >= timedelta(days=behaviour.cooldown_days)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(scenarios())
def test_pipeline_keeps_every_promise(
    scenario: tuple[list[Candidate], RuleContext, int, list[Candidate]],
) -> None:
    candidates, context, limit, fillers = scenario
    offers = run_pipeline(candidates, context, limit=limit, fillers=fillers)
    _check(candidates, context, limit, fillers, offers)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(scenarios())
def test_pipeline_is_a_pure_function(
    scenario: tuple[list[Candidate], RuleContext, int, list[Candidate]],
) -> None:
    candidates, context, limit, fillers = scenario
    first = run_pipeline(candidates, context, limit=limit, fillers=fillers)
    assert run_pipeline(candidates, context, limit=limit, fillers=fillers) == first


@settings(max_examples=200, derandomize=True, deadline=None)
@given(seconds=st.integers(min_value=-3 * 86_400, max_value=3 * 86_400))
def test_a_consumable_reappears_exactly_after_its_interval(seconds: int) -> None:
    # capsules: 30 days (shipped override); `seconds` around that boundary
    elapsed = timedelta(days=30, seconds=seconds)
    history = [buy("coffee", elapsed.total_seconds() / 86_400)]
    offers = run_pipeline(
        [Candidate("coffee", 1.0)], ctx(history, placement="order_confirmation"), limit=4
    )
    assert (offers.item_ids == ["coffee"]) == (elapsed >= timedelta(days=30))
    if offers.items:
        assert offers.items[0].reason == "time to restock"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(days=st.integers(min_value=0, max_value=1500))
def test_cooldown_is_monotone_in_now(days: int) -> None:
    history = [buy("bike", 0)]  # 730-day cooldown
    later = ctx(history, now=NOW + timedelta(days=days))
    offers = run_pipeline([Candidate("bike", 1.0), Candidate("lock", 0.5)], later, limit=4)
    # The bike itself is never re-offered; another bicycle would be blocked until day 730.
    substitute = Item("bike-2", "Road bike", "sports/bicycles/road")
    blocked = run_pipeline(
        [Candidate("bike-2", 1.0)],
        replace(later, catalog={**CATALOG, "bike-2": substitute}),
        limit=4,
    )
    assert "bike" not in offers.item_ids
    assert (blocked.item_ids == []) == (days < 730)
    assert SHIPPED.categories.overrides["sports/bicycles"].cooldown_days == 730


@settings(max_examples=400, derandomize=True, deadline=None)
@given(scenarios(), st.integers(min_value=0, max_value=3))
def test_stopping_early_serves_what_the_whole_list_would(
    scenario: tuple[list[Candidate], RuleContext, int, list[Candidate]], order: int
) -> None:
    """The prefix evaluation serves exactly the items (scores, reasons) of a full pass.

    Model lists arrive best first, but the early stop must not rely on it: half the
    cases shuffle the order. Lists longer than the first prefix make it stop early.
    """
    candidates, context, limit, fillers = scenario
    candidates = candidates * 3  # past the first prefix (32), with duplicates
    if order == 1:
        candidates.sort(key=lambda c: -c.score)
    elif order == 2:
        candidates.reverse()
    fresh = replace(context, _memo={})
    full = run_pipeline(candidates, fresh, limit=limit, fillers=fillers, exhaustive=True)
    lazy = run_pipeline(candidates, context, limit=limit, fillers=fillers)
    assert lazy.items == full.items
    assert lazy.n_fillers == full.n_fillers
    # the same list as a batch call hands it over: parallel ids and scores, read lazily
    columns = CandidateList([c.item_id for c in candidates], [c.score for c in candidates], "model")
    assert run_pipeline(columns, context, limit=limit, fillers=fillers).items == full.items


def test_stopping_early_looks_at_fewer_candidates() -> None:
    candidates = [Candidate(ITEM_IDS[i % len(ITEM_IDS)], 100.0 - i) for i in range(100)]
    full = run_pipeline(candidates, ctx(), limit=2, exhaustive=True)
    lazy = run_pipeline(candidates, ctx(), limit=2)
    assert lazy.items == full.items
    assert sum(full.removed.values()) > sum(lazy.removed.values())


def test_a_complement_deep_in_the_list_still_wins_its_boost() -> None:
    """The early stop must allow for the boost lifting a later candidate past the prefix."""
    mugs = {f"mug-{i}": Item(f"mug-{i}", f"Mug {i}", "home/kitchen", 8.0) for i in range(40)}
    context = ctx([buy("tv-55", 7)], catalog={**CATALOG, **mugs})
    candidates = [Candidate(item_id, 10.0 - i / 100) for i, item_id in enumerate(mugs)]
    candidates.append(Candidate("mount", 9.0))  # x1.5 = 13.5: first once boosted
    offers = run_pipeline(candidates, context, limit=2)
    assert offers.item_ids == ["mount", "mug-0"]
    assert offers.items[0].reason == 'complements TV 55" Zentro you bought'


@settings(max_examples=200, derandomize=True, deadline=None)
@given(scenarios(), scenarios())
def test_a_shared_behaviour_cache_changes_nothing(
    first: tuple[list[Candidate], RuleContext, int, list[Candidate]],
    second: tuple[list[Candidate], RuleContext, int, list[Candidate]],
) -> None:
    """Contexts of one batch share resolved behaviours; each list is what it is alone.

    The cache is only shared when the learned behaviours are the same (one model), so
    the second scenario takes the first's.
    """
    cache: dict[str, CategoryBehaviour | None] = {}
    for candidates, context, limit, fillers in (first, second):
        context = replace(context, behaviours=first[1].behaviours, _memo={})
        alone = run_pipeline(candidates, context, limit=limit, fillers=fillers)
        shared = replace(context, behaviour_cache=cache, _memo={})
        assert run_pipeline(candidates, shared, limit=limit, fillers=fillers) == alone
