"""The rules pipeline: model candidates -> rules -> an `OfferList` for the response."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from recsys.records import ItemColumns
from recsys.rules.already_bought import already_bought
from recsys.rules.basket import basket_exclusion
from recsys.rules.boost import boosted, complement_boost, reranks
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


def _unchanged(ctx: RuleContext) -> float:
    return 1.0


#: Rules whose verdict on the first m candidates does not depend on the rest: each
#: keeps or drops a candidate on its own (dedupe: by the ones before it), keeps the
#: order, and raises a score by at most the factor given (the boost re-ranks). With
#: only such rules the pipeline may stop early; see `run_pipeline`.
PREFIX_SAFE: Mapping[Rule, Callable[[RuleContext], float]] = {
    eligibility: _unchanged,
    already_bought: _unchanged,
    durable_cooldown: _unchanged,
    basket_exclusion: _unchanged,
    complement_boost: lambda ctx: ctx.config.complements.boost,
    dedupe: _unchanged,
}

#: PREFIX_SAFE rules that may re-sort the list by score (stably), and whether they do
#: for a context. The others keep the order, so a longer prefix can be evaluated as the
#: shorter one plus the new block alone: concatenated, or merged by score when one of
#: these re-sorts.
RERANKS: Mapping[Rule, Callable[[RuleContext], bool]] = {complement_boost: reranks}

#: The first prefix the pipeline tries, as a multiple of the limit (it then doubles).
FIRST_PREFIX = 4
MIN_PREFIX = 32

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


@dataclass(frozen=True, slots=True)
class Removal:
    """A candidate a rule dropped, recorded only when the caller asks (`explain`)."""

    candidate: Candidate
    rule: str


def run_pipeline(
    candidates: Sequence[Candidate],
    ctx: RuleContext,
    rules: Sequence[Rule] = DEFAULT_RULES,
    limit: int = 4,
    fillers: Sequence[Candidate] = (),
    *,
    exhaustive: bool = False,
    removals: list[Removal] | None = None,
) -> OfferList:
    """Apply `rules` in order, top up from `fillers`, cut to `limit`.

    Fillers (usually popular items) go through the same rules in a second
    pass, and only when fewer than `limit` model candidates survive; they are
    appended after the survivors because their scores are on another scale.
    Duplicates are removed and the limit applied here even when `rules` lacks
    `dedupe`, so those guarantees never depend on the rule list.

    A list of a few items rarely needs all ~100 candidates: when every rule is in
    `PREFIX_SAFE`, the rules run on a prefix (4 x `limit`, at least 32, then doubled) and stop
    once the prefix's `limit`-th survivor scores at least the best that any later
    candidate could reach after the boost. The items served are exactly those of
    the whole list (a property test checks it); `removed` then counts what the
    rules dropped among the candidates they looked at. `exhaustive` runs them on
    every candidate, for reports that count removals over the whole pool.

    `removals`, when given, receives each dropped candidate with the rule that dropped
    it (among the candidates the rules looked at), for explanations; without it the
    pipeline builds no such record.
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    removed: dict[str, int] = {}
    survivors = _survivors(candidates, ctx, rules, removed, limit, exhaustive, removals)
    n_model = len(survivors)
    if n_model < limit and fillers:
        seen = {c.item_id for c in survivors}
        extra = _survivors(
            [f for f in fillers if f.item_id not in seen],
            ctx,
            rules,
            removed,
            limit - n_model,
            exhaustive,
            removals,
        )
        survivors.extend(c for c in extra if c.item_id not in seen)
    n_fillers = max(min(len(survivors), limit) - n_model, 0)
    if len(survivors) > limit:
        removed["limit"] = removed.get("limit", 0) + len(survivors) - limit
    served = tuple(_explained(c) for c in survivors[:limit])
    return OfferList(items=served, removed=removed, n_fillers=n_fillers)


def rule_name(rule: Rule) -> str:
    """The key a rule's removals are counted under (its function name)."""
    return getattr(rule, "__name__", type(rule).__name__)


def _survivors(
    candidates: Sequence[Candidate],
    ctx: RuleContext,
    rules: Sequence[Rule],
    removed: dict[str, int],
    limit: int,
    exhaustive: bool,
    removals: list[Removal] | None = None,
) -> list[Candidate]:
    """The unique candidates that pass `rules`, best first: all of them, or enough for `limit`."""
    ceiling = 1.0
    for rule in rules:
        factor = None if exhaustive else PREFIX_SAFE.get(rule)
        if factor is None:
            return first_of_each(_apply(candidates, ctx, rules, removed, removals))
        ceiling *= factor(ctx)
    resort = any(RERANKS[rule](ctx) for rule in rules if rule in RERANKS)
    counts_dedupe = dedupe in rules
    done = 0
    size = max(FIRST_PREFIX * limit, MIN_PREFIX)
    kept: list[Candidate] = []
    while True:
        # Only the new block goes through the rules: each rule decides per candidate, so
        # the prefix's survivors are the earlier block's plus this one's, in score order
        # when a rule re-sorted (a stable sort of both: ties keep their positions).
        block = _apply(candidates[done:size], ctx, rules, removed, removals)
        merged = kept + block
        if resort and kept and block:
            merged.sort(key=lambda c: -c.score)
        kept = first_of_each(merged)
        if counts_dedupe and len(kept) < len(merged):
            # an item in both blocks: the one pass over the prefix would have deduped it
            removed["dedupe"] = removed.get("dedupe", 0) + len(merged) - len(kept)
            if removals is not None:
                removals.extend(Removal(c, "dedupe") for c in _dropped(merged, kept))
        done = min(size, len(candidates))
        if done >= len(candidates) or (
            len(kept) >= limit
            and (
                limit == 0
                or kept[limit - 1].score >= boosted(_best_score_from(candidates, done), ceiling)
            )
        ):
            return kept
        size *= 2


def _best_score_from(candidates: Sequence[Candidate], start: int) -> float:
    if isinstance(candidates, ItemColumns):
        return candidates.best_score_from(start)
    return max(candidates[i].score for i in range(start, len(candidates)))


def _apply(
    candidates: Sequence[Candidate],
    ctx: RuleContext,
    rules: Sequence[Rule],
    removed: dict[str, int],
    removals: list[Removal] | None = None,
) -> list[Candidate]:
    current = list(candidates)
    for rule in rules:
        after = rule(current, ctx)
        name = rule_name(rule)
        removed[name] = removed.get(name, 0) + max(len(current) - len(after), 0)
        if removals is not None and len(after) < len(current):
            removals.extend(Removal(c, name) for c in _dropped(current, after))
        current = after
    return current


def _dropped(before: Sequence[Candidate], after: Sequence[Candidate]) -> list[Candidate]:
    """The candidates of `before` missing from `after`, matched by item id.

    A rule may return a changed copy (a new reason), so identity cannot be used; of
    several copies of one item the later ones are the dropped ones, as in `dedupe`.
    """
    left = Counter(c.item_id for c in after)
    dropped = []
    for candidate in before:
        if left[candidate.item_id] > 0:
            left[candidate.item_id] -= 1
        else:
            dropped.append(candidate)
    return dropped


def _explained(candidate: Candidate) -> Candidate:
    if candidate.reason:
        return candidate
    return replace(candidate, reason=DEFAULT_REASONS.get(candidate.source, FALLBACK_REASON))
