"""The rules pipeline: model candidates -> rules -> an `OfferList` for the response."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from recsys.rules.already_bought import already_bought
from recsys.rules.basket import basket_exclusion
from recsys.rules.boost import complement_boost
from recsys.rules.candidates import Candidate, Rule, RuleContext
from recsys.rules.cooldown import durable_cooldown
from recsys.rules.dedupe import dedupe, first_of_each
from recsys.rules.eligibility import eligibility

#: The production order. Filters run before the boost so it only re-ranks
#: survivors; dedupe runs after it so the best-scored copy of an item wins.
DEFAULT_RULES: tuple[Rule, ...] = (
    eligibility,
    already_bought,
    durable_cooldown,
    basket_exclusion,
    complement_boost,
    dedupe,
)

#: Reason shown for an item no rule explained, by `Candidate.source`.
DEFAULT_REASONS: Mapping[str, str] = {
    "model": "picked for you",
    "popular": "popular right now",
    "complement": "goes well with your order",
}
FALLBACK_REASON = "picked for you"


@dataclass(frozen=True, slots=True)
class OfferList:
    """What the pipeline serves.

    `items`: at most `limit` candidates, best first, unique item ids, each with
    a reason. `removed`: rule name -> candidates it dropped, summed over the
    model pass and the filler pass (`limit` counts what did not fit), for
    metrics. `n_fillers`: how many served items came from the fillers.
    """

    items: tuple[Candidate, ...]
    removed: Mapping[str, int]
    n_fillers: int

    @property
    def item_ids(self) -> list[str]:
        return [candidate.item_id for candidate in self.items]


def run_pipeline(
    candidates: Sequence[Candidate],
    ctx: RuleContext,
    rules: Sequence[Rule] = DEFAULT_RULES,
    limit: int = 4,
    fillers: Sequence[Candidate] = (),
) -> OfferList:
    """Apply `rules` in order, top up from `fillers`, cut to `limit`.

    Fillers (usually popular items) go through the same rules in a second
    pass, and only when fewer than `limit` model candidates survive; they are
    appended after the survivors because their scores are on another scale.
    Duplicates are removed and the limit applied here even when `rules` lacks
    `dedupe`, so those guarantees never depend on the rule list.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    removed: dict[str, int] = {}
    survivors = first_of_each(_apply(candidates, ctx, rules, removed))
    n_model = len(survivors)
    if n_model < limit and fillers:
        seen = {c.item_id for c in survivors}
        extra = _apply([f for f in fillers if f.item_id not in seen], ctx, rules, removed)
        survivors.extend(c for c in first_of_each(extra) if c.item_id not in seen)
    n_fillers = max(min(len(survivors), limit) - n_model, 0)
    if len(survivors) > limit:
        removed["limit"] = removed.get("limit", 0) + len(survivors) - limit
    served = tuple(_explained(c) for c in survivors[:limit])
    return OfferList(items=served, removed=removed, n_fillers=n_fillers)


def rule_name(rule: Rule) -> str:
    """The key a rule's removals are counted under (its function name)."""
    return getattr(rule, "__name__", type(rule).__name__)


def _apply(
    candidates: Sequence[Candidate],
    ctx: RuleContext,
    rules: Sequence[Rule],
    removed: dict[str, int],
) -> list[Candidate]:
    current = list(candidates)
    for rule in rules:
        after = rule(current, ctx)
        name = rule_name(rule)
        removed[name] = removed.get(name, 0) + max(len(current) - len(after), 0)
        current = after
    return current


def _explained(candidate: Candidate) -> Candidate:
    if candidate.reason:
        return candidate
    return replace(candidate, reason=DEFAULT_REASONS.get(candidate.source, FALLBACK_REASON))
