"""Why a candidate was not served: the pipeline's removals as sentences people can read.

The pipeline records which rule dropped which candidate (`Removal`) only when asked;
this module turns that record into an `Explanation` per candidate, with the date
the rule stops applying where there is one (cooldown end, restock due, next
contact allowed). Pure: everything comes from the `RuleContext` the rules saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recsys.rules._time import naive_utc
from recsys.rules.already_bought import RESTOCK_REASON, back_at, offered_from
from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.categories import behaviour_key
from recsys.rules.contact import ContactDecision
from recsys.rules.cooldown import durable_blocks
from recsys.rules.hierarchy import ancestors, under_any
from recsys.rules.pipeline import Removal


@dataclass(frozen=True, slots=True)
class Explanation:
    """One candidate the rules removed.

    `rule`: the pipeline rule (its function name) or `contact_policy`; `reason`: a
    finer code (`out_of_stock`, `not_in_catalog`, `excluded`, `already_bought`,
    `not_in_category`, `cooldown`, `in_basket`, `basket_durable`, `duplicate`, `opted_out`,
    `cap_reached`, or the rule name for a rule this module does not know);
    `detail`: a sentence for people; `until`: when the rule stops applying (naive
    UTC), if it ever does.
    """

    item_id: str
    rule: str
    reason: str
    detail: str
    score: float
    source: str
    until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "rule": self.rule,
            "reason": self.reason,
            "detail": self.detail,
            "until": self.until.isoformat() if self.until is not None else None,
            "score": round(self.score, 6),
            "source": self.source,
        }


def explain_removals(removals: Iterable[Removal], ctx: RuleContext) -> tuple[Explanation, ...]:
    """Each removal described, in the order the rules dropped them."""
    return tuple(_explain(r.candidate, r.rule, ctx) for r in removals)


def explain_suppression(
    served: Sequence[Candidate], decision: ContactDecision
) -> tuple[Explanation, ...]:
    """The items a marketing placement would have served, removed by the contact policy."""
    if decision.reason == "opted_out":
        detail = "the customer opted out of marketing"
    elif decision.next_allowed_at is not None:
        detail = f"contact cap reached; next contact allowed {_day(decision.next_allowed_at)}"
    else:
        detail = "contact cap reached"
    return tuple(
        Explanation(
            c.item_id, "contact_policy", decision.reason, detail, c.score, c.source,
            naive_utc(decision.next_allowed_at) if decision.next_allowed_at else None,
        )
        for c in served
    )


def _explain(candidate: Candidate, rule: str, ctx: RuleContext) -> Explanation:
    describe = _DESCRIBERS.get(rule)
    reason, detail, until = (
        describe(candidate, ctx) if describe is not None else (rule, f"removed by {rule}", None)
    )
    return Explanation(
        candidate.item_id, rule, reason, detail, candidate.score, candidate.source,
        naive_utc(until) if until is not None else None,
    )


Described = tuple[str, str, datetime | None]


def _eligibility(candidate: Candidate, ctx: RuleContext) -> Described:
    item = ctx.catalog.get(candidate.item_id)
    if item is None:
        return "not_in_catalog", "not in the catalog", None
    if not item.in_stock:
        return "out_of_stock", "out of stock", None
    if item.item_id in ctx.exclude_items:
        return "excluded", "excluded by the request (exclude)", None
    if ctx.categories and not (item.category and under_any(item.category, ctx.categories)):
        return "not_in_category", f"not under the requested {', '.join(ctx.categories)}", None
    return "excluded", "excluded by [eligibility] in rules.toml", None


def _already_bought(candidate: Candidate, ctx: RuleContext) -> Described:
    holding = ctx.holdings().get(candidate.item_id)
    if holding is None:
        return "already_bought", "already bought", None
    bought = f"bought on {_day(holding.last_bought_at)}"
    if not holding.kept:
        return "already_bought", f"{bought} and returned", None
    if ctx.placement not in ctx.config.categories.rebuy_placements:
        return "already_bought", f"{bought}; {ctx.placement} offers only new items", None
    found = back_at(holding, ctx.behaviour_of(candidate.item_id), ctx.config.categories)
    if found is None:
        return "already_bought", f"{bought}; not offered again", None
    due, why = found
    kind = "consumable, restock" if why == RESTOCK_REASON else "bought regularly, next"
    text = f"{bought}; {kind} due {_day(due)}"
    horizon = ctx.config.categories.horizon_days(ctx.placement)
    if horizon:
        # the placement looks ahead, so the item is back in it before it is due
        behaviour = ctx.behaviour_of(candidate.item_id)
        start = offered_from(holding, behaviour, ctx.config.categories, horizon)
        if start is not None and start[0] < due:
            due = start[0]
            text += f", in the {ctx.placement} from {_day(due)}"
    return "already_bought", text, due


def _durable_cooldown(candidate: Candidate, ctx: RuleContext) -> Described:
    blocks = durable_blocks(
        ctx.purchases, ctx.catalog, ctx.behaviours, ctx.config.categories, ctx.now,
        ctx.holdings(), ctx.behaviour_of,
    )
    scope = behaviour_key(candidate.item_id, ctx.category_of(candidate.item_id))
    for level in ancestors(scope):
        until = blocks.get(level)
        if until is not None:
            return (
                "cooldown",
                f"a durable in {level} was bought; cooldown until {_day(until)}",
                until,
            )
    return "cooldown", "in a durable category's cooldown", None


def _basket_exclusion(candidate: Candidate, ctx: RuleContext) -> Described:
    if candidate.item_id in set(ctx.basket):
        return "in_basket", "already in the basket or order", None
    category = ctx.category_of(candidate.item_id)
    for item_id in ctx.basket:
        behaviour = ctx.behaviour_of(item_id)
        if (
            behaviour is not None
            and behaviour.kind == "durable"
            and category
            and under_any(category, [behaviour.category])
        ):
            return (
                "basket_durable",
                f"the order holds a durable in {behaviour.category} ({item_id})",
                None,
            )
    return "basket_durable", "a durable of its category is in the order", None


def _dedupe(candidate: Candidate, ctx: RuleContext) -> Described:
    return "duplicate", "already listed higher up", None


_DESCRIBERS = {
    "eligibility": _eligibility,
    "already_bought": _already_bought,
    "durable_cooldown": _durable_cooldown,
    "basket_exclusion": _basket_exclusion,
    "dedupe": _dedupe,
}


def _day(at: datetime) -> str:
    return naive_utc(at).date().isoformat()
