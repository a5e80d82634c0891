"""Candidates -> rules -> offers: the one place where a model's scores become items to show.

Callers (the API and the campaign job) load the data from the store, pass it
here as plain values with an explicit `now`, and render the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from recsys.experiments import in_control_group
from recsys.records import Customer, Item, Purchase, ScoredItem
from recsys.rules.candidates import Candidate, RuleContext, candidates_from_scored
from recsys.rules.categories import CategoryBehaviour, behaviours_from_dict
from recsys.rules.complements import complements_for
from recsys.rules.config import RulesConfig
from recsys.rules.contact import ContactDecision, is_marketing, may_contact
from recsys.rules.explain import Explanation, explain_removals, explain_suppression
from recsys.rules.learned_complements import LearnedComplements
from recsys.rules.pipeline import Removal, run_pipeline

PLACEMENTS = ("order_confirmation", "anniversary", "newsletter", "birthday")
CATEGORY_BEHAVIOUR_KEY = "category_behaviour"
COMPLEMENTS_KEY = "complements"


class ScoringModel:
    """What offers need from a recommender (see `recsys.models.base.Recommender`)."""

    def knows(self, customer_id: str) -> bool:  # pragma: no cover - protocol
        raise NotImplementedError

    def recommend(
        self, customer_id: str, n: int, history: Sequence[str] = ()
    ) -> Sequence[ScoredItem]:  # pragma: no cover - protocol
        raise NotImplementedError

    def popular(self, n: int) -> list[ScoredItem]:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ServingModel:
    """A model version with what was learned beside it (category behaviour, complements)."""

    version: str
    name: str
    recommender: Any  # a recsys.models Recommender; typed loosely to keep this layer model-free
    behaviours: Mapping[str, CategoryBehaviour] = field(default_factory=dict)
    complements: LearnedComplements = field(default_factory=LearnedComplements)
    popular_pool: tuple[ScoredItem, ...] = ()
    trained_at: datetime | None = None
    fillers: tuple[Candidate, ...] = ()

    def pool(self, wanted: int) -> int:
        """Candidates to ask the model for: at most what it precomputed per customer.

        Reading a precomputed list costs microseconds; asking for more than it
        holds would score the whole catalog for a handful of extra candidates.
        """
        stored = int(getattr(self.recommender, "precomputed", 0))
        return min(wanted, stored) if stored > 0 else wanted

    def for_placement(self, placement: str, rules: RulesConfig) -> Any:
        """The recommender that ranks `placement` (`Recommender.for_placement`): a
        pair's discovery model for the placements that never re-offer bought items."""
        return self.recommender.for_placement(placement in rules.categories.rebuy_placements)

    @classmethod
    def from_parts(
        cls,
        version: str,
        name: str,
        recommender: Any,
        extras: Mapping[str, Any],
        pool: int = 200,
        trained_at: datetime | None = None,
        extra_arrays: Mapping[str, Any] | None = None,
    ) -> ServingModel:
        """`extra_arrays`: the artifact's learned arrays (complements saved as arrays)."""
        behaviours = behaviours_from_dict(extras.get(CATEGORY_BEHAVIOUR_KEY) or {})
        prefix = COMPLEMENTS_KEY + "."
        packed = {
            key[len(prefix) :]: value
            for key, value in (extra_arrays or {}).items()
            if key.startswith(prefix)
        }
        complements = (
            LearnedComplements.from_arrays(packed)
            if packed
            else LearnedComplements.from_dict(extras.get(COMPLEMENTS_KEY) or {})
        )
        popular = list(recommender.popular(pool))
        top = max((abs(s.score) for s in popular), default=0.0) or 1.0
        # Popularity counts become (0, 1] so fillers read like the other scores.
        normalised = tuple(ScoredItem(s.item_id, s.score / top) for s in popular)
        fillers = tuple(candidates_from_scored(normalised, source="popular"))
        return cls(
            version, name, recommender, behaviours, complements, normalised, trained_at, fillers
        )


@dataclass(frozen=True, slots=True)
class ItemFilters:
    """A caller's filters for one list: items never to serve, categories to serve from.

    A category means itself and everything under it (`recsys.rules.hierarchy`); with
    several, an item under any of them qualifies.
    """

    exclude: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()


NO_FILTERS = ItemFilters()


@dataclass(frozen=True, slots=True)
class CustomerData:
    """What the store knows of one customer, loaded before the rules run."""

    customer_id: str | None
    customer: Customer | None = None
    purchases: Sequence[Purchase] = ()
    contact_history: Sequence[datetime] = ()


@dataclass(frozen=True, slots=True)
class OfferItem:
    item_id: str
    name: str | None
    category: str | None
    price: float | None
    url: str | None
    image_url: str | None
    score: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "url": self.url,
            "image_url": self.image_url,
            "score": round(self.score, 6),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Offer:
    """A served list. `suppressed` says why a marketing placement got no items.

    `explanation` (only when asked for with `explain`) lists the candidates the rules
    removed and why; a suppressed placement lists what it would have served.
    """

    customer_id: str | None
    model_version: str
    placement: str
    fallback: bool
    items: tuple[OfferItem, ...]
    removed: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    suppressed: str | None = None
    #: Served items that came from the popular fillers (`OfferList.n_fillers`).
    fillers: int = 0
    explanation: tuple[Explanation, ...] = ()


def _offer_items(served: Sequence[Candidate], catalog: Mapping[str, Item]) -> tuple[OfferItem, ...]:
    """Items with their catalog fields; scores rescaled so the best item of the list is 1.0.

    Model, complement and popularity scores live on different scales; a template
    only needs their order and relative strength within one list.
    """
    top = max((c.score for c in served), default=0.0)
    scale = top if top > 0 else 1.0
    out = []
    for c in served:
        item = catalog[c.item_id]
        out.append(
            OfferItem(
                c.item_id,
                item.name,
                item.category,
                item.price,
                item.url,
                item.image_url,
                max(float(c.score) / scale, 0.0),
                c.reason or "picked for you",
            )
        )
    return tuple(out)


def _popularity(model: ServingModel) -> dict[str, float]:
    return {s.item_id: s.score for s in model.popular_pool}


def recommend_for_customer(
    model: ServingModel,
    rules: RulesConfig,
    catalog: Mapping[str, Item],
    data: CustomerData,
    *,
    placement: str,
    limit: int,
    now: datetime,
    basket: Sequence[str] = (),
    scored: Sequence[ScoredItem] | None = None,
    behaviour_cache: dict[str, CategoryBehaviour | None] | None = None,
    explain: bool = False,
    filters: ItemFilters = NO_FILTERS,
) -> Offer:
    """Personalized items for one customer under a placement's recipe.

    order_confirmation: complements of the basket (or the latest order) first,
    then the model's picks; no contact cap. Marketing placements (newsletter,
    anniversary, birthday) honour opt-in and the contact cap. `scored` lets a
    batch caller pass model scores it computed for many customers at once, and
    `behaviour_cache` share resolved category behaviours between its customers
    (valid while `model` and `rules` stay the same). `explain` records the removed
    candidates (`Offer.explanation`); a suppressed placement then still runs the rules.
    `filters` are the caller's (`exclude`, `category`): they apply to the model's
    candidates and the fillers alike, so a narrow category may serve fewer than `limit`.
    """
    pool = rules.candidates.pool_size
    purchases = list(data.purchases)
    history = [p.item_id for p in purchases if p.quantity > 0]
    decision: ContactDecision | None = None
    marketing = is_marketing(placement, rules.contact)
    if data.customer is not None and marketing:
        decision = may_contact(
            data.customer.marketing_opt_in, data.contact_history, placement, rules.contact, now
        )
        if not decision.allowed and not explain:
            return Offer(
                data.customer_id, model.version, placement, False, (), suppressed=decision.reason
            )
    if (
        marketing
        and (decision is None or decision.allowed)
        and data.customer_id is not None
        and in_control_group(data.customer_id, rules.control)
    ):
        # The global control group gets no marketing at all, so its purchases show what
        # happens without it (`recsys report impact`). Only customers the contact policy
        # would serve are held out, so both groups hold the same kind of customer.
        return Offer(data.customer_id, model.version, placement, False, (), suppressed="held_out")
    recommender = model.for_placement(placement, rules)
    knows = data.customer_id is not None and recommender.knows(data.customer_id)
    if scored is None:
        # A known customer is re-folded only with orders the model has not seen, since
        # folding in costs far more than scoring.
        fresh = (
            [p.item_id for p in purchases if p.quantity > 0 and p.purchased_at > model.trained_at]
            if knows and model.trained_at is not None
            else history
        )
        scored = (
            recommender.recommend(
                data.customer_id, model.pool(pool) if knows and not fresh else pool, history=fresh
            )
            if data.customer_id is not None and (knows or history)
            else []
        )
    candidates = candidates_from_scored(scored)
    anchors = list(basket)
    if placement == "order_confirmation" and not anchors and purchases:
        latest = max(purchases, key=lambda p: p.purchased_at).order_id
        anchors = [p.item_id for p in purchases if p.order_id == latest and p.quantity > 0]
    if anchors:
        complements = complements_for(
            anchors, catalog, model.complements, rules.complements, _popularity(model), limit=pool
        )
        # Complements lead a cross-sell list; model picks follow on their own scale.
        top = max((c.score for c in candidates), default=0.0)
        candidates = [
            Candidate(c.item_id, abs(top) + 1.0 + c.score, c.reason, c.source) for c in complements
        ] + list(candidates)
    ctx = RuleContext(
        now=now,
        config=rules,
        catalog=catalog,
        purchases=purchases,
        behaviours=model.behaviours,
        complements=model.complements,
        contact_history=data.contact_history,
        basket=tuple(anchors),
        placement=placement,
        customer_id=data.customer_id,
        behaviour_cache=behaviour_cache,
        exclude_items=filters.exclude,
        categories=filters.categories,
    )
    removals: list[Removal] | None = [] if explain else None
    offer_list = run_pipeline(
        candidates, ctx, limit=limit, fillers=model.fillers, removals=removals
    )
    explanation = explain_removals(removals, ctx) if removals is not None else ()
    if decision is not None and not decision.allowed:
        return Offer(
            data.customer_id, model.version, placement, False, (), suppressed=decision.reason,
            explanation=explanation + explain_suppression(offer_list.items, decision),
        )
    fallback = not knows and not history and not anchors
    return Offer(
        data.customer_id,
        model.version,
        placement,
        fallback or model.name == "popular",
        _offer_items(offer_list.items, catalog),
        removed=dict(offer_list.removed),
        explanation=explanation,
        fillers=offer_list.n_fillers,
    )


def cross_sell(
    model: ServingModel,
    rules: RulesConfig,
    catalog: Mapping[str, Item],
    data: CustomerData,
    *,
    items: Sequence[str],
    limit: int,
    now: datetime,
    explain: bool = False,
    behaviour_cache: dict[str, CategoryBehaviour | None] | None = None,
    filters: ItemFilters = NO_FILTERS,
) -> Offer:
    """Complements of a basket; unknown basket items are ignored and reported in `warnings`."""
    known = [i for i in dict.fromkeys(items) if i in catalog]
    warnings = tuple(
        f"unknown item {i!r} ignored" for i in dict.fromkeys(items) if i not in catalog
    )
    offer = recommend_for_customer(
        model,
        rules,
        catalog,
        data,
        placement="order_confirmation",
        limit=limit,
        now=now,
        basket=known,
        explain=explain,
        behaviour_cache=behaviour_cache,
        filters=filters,
    )
    return replace(offer, warnings=warnings)


def item_complements(
    model: ServingModel,
    rules: RulesConfig,
    catalog: Mapping[str, Item],
    *,
    item_id: str,
    limit: int,
    now: datetime,
    explain: bool = False,
    behaviour_cache: dict[str, CategoryBehaviour | None] | None = None,
    filters: ItemFilters = NO_FILTERS,
) -> Offer:
    """Items bought with `item_id` (learned and configured), for product blocks in emails."""
    similar: list[ScoredItem] = []
    try:
        similar = list(model.recommender.similar_items(item_id, rules.candidates.pool_size))
    except (KeyError, ValueError):
        similar = []
    return recommend_for_customer(
        model,
        rules,
        catalog,
        CustomerData(None),
        placement="order_confirmation",
        limit=limit,
        now=now,
        basket=[item_id],
        scored=similar,
        explain=explain,
        behaviour_cache=behaviour_cache,
        filters=filters,
    )
