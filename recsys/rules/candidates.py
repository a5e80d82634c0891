"""The data every rule sees: `Candidate`s in, `Candidate`s out, plus one `RuleContext`.

A rule is a pure function `(candidates, ctx) -> candidates` (the `Rule`
type), the shape of a structlog processor: the pipeline is just an ordered
list of them. Everything a rule may look at is in the frozen `RuleContext`;
the caller loads it from the store before the pipeline runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from recsys.records import Item, ItemColumns, Purchase, ScoredItem, ScoredList
from recsys.rules.categories import CategoryBehaviour, resolve_item_behaviour
from recsys.rules.config import RulesConfig
from recsys.rules.history import Holding, holdings
from recsys.rules.learned_complements import LearnedComplements

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Candidate:
    """An item on its way to a response.

    `score` is higher-is-better in the producer's own scale; `reason` is the
    sentence shown to the customer (filled with a default by the pipeline when
    no rule set one); `source` says who proposed it: `model`, `popular`
    (fillers), `complement` or any other producer name.
    """

    item_id: str
    score: float
    reason: str | None = None
    source: str = "model"


@dataclass(frozen=True, slots=True)
class RuleContext:
    """Everything the rules may consult for one customer at one instant.

    `now` is an explicit UTC instant (naive = UTC); purchases after it are
    ignored. `catalog` maps item_id -> Item and should hold at least the
    candidates, the basket and the purchased items. `behaviours` is the learned
    category table from the model artifact and `complements` its learned
    co-purchases. `basket` holds the item ids of the basket or the order just
    placed; `contact_history` the UTC instants of earlier marketing contacts.
    `exclude_items` and `categories` are the caller's filters for this one list
    (`?exclude=`, `?category=`): those items are never served, and with categories
    only items under one of them are.
    """

    now: datetime
    config: RulesConfig
    catalog: Mapping[str, Item]
    purchases: Sequence[Purchase] = ()
    behaviours: Mapping[str, CategoryBehaviour] = field(default_factory=dict)
    complements: LearnedComplements = field(default_factory=LearnedComplements)
    contact_history: Sequence[datetime] = ()
    basket: Sequence[str] = ()
    placement: str = "newsletter"
    customer_id: str | None = None
    exclude_items: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()
    #: Resolved behaviours by item id, shared by the contexts of one batch job (the
    #: campaign), whose model, catalog and rules stay fixed; None resolves every time.
    behaviour_cache: dict[str, CategoryBehaviour | None] | None = field(
        default=None, repr=False, compare=False
    )
    # Per-context memo of data derived from the customer alone (holdings, blocked
    # scopes, anchors): the context is immutable, so computing each once is safe, and
    # the pipeline may run the rules more than once on growing prefixes.
    _memo: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: str, compute: Callable[[], _T]) -> _T:
        """`compute()` the first time `key` is asked for, the same value afterwards."""
        if key in self._memo:
            return self._memo[key]  # type: ignore[return-value]
        value = compute()
        self._memo[key] = value
        return value

    def holdings(self) -> Mapping[str, Holding]:
        """`holdings(purchases, now)`, computed once per context."""
        return self.memo("holdings", lambda: holdings(self.purchases, self.now))

    def category_of(self, item_id: str) -> str | None:
        item = self.catalog.get(item_id)
        return item.category if item is not None else None

    def behaviour_of(self, item_id: str) -> CategoryBehaviour | None:
        """The resolved behaviour of an item; None means regular (or unknown item).

        See `resolve_item_behaviour`: the item's own learned cycle where it has one, its
        category's otherwise, an override on the category above both.
        """
        cache = self.behaviour_cache
        if cache is not None and item_id in cache:
            return cache[item_id]
        found = resolve_item_behaviour(
            item_id, self.category_of(item_id), self.behaviours, self.config.categories
        )
        if cache is not None:
            cache[item_id] = found
        return found


Rule = Callable[[Sequence[Candidate], RuleContext], list[Candidate]]


class CandidateList(ItemColumns[Candidate]):
    """Candidates from parallel id and score lists, each `Candidate` made when read.

    The pipeline reads a prefix and the best score after it (`best_score_from`), so
    a long model list costs only the candidates the rules look at.
    """

    __slots__ = ("source",)

    def __init__(self, item_ids: Sequence[str], scores: Sequence[float], source: str) -> None:
        super().__init__(item_ids, scores)
        self.source = source

    def _make(self, item_id: str, score: float) -> Candidate:
        return Candidate(item_id, score, None, self.source)


def candidates_from_scored(
    items: Iterable[ScoredItem], source: str = "model"
) -> Sequence[Candidate]:
    """Model output (`ScoredItem`s, best first) as pipeline input, order kept."""
    if isinstance(items, ScoredList):
        return CandidateList(items.item_ids, items.scores, source)
    return [Candidate(item.item_id, item.score, None, source) for item in items]
