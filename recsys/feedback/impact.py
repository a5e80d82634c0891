"""What the offers did: per placement, campaign and variant, treated against control.

`compute_impact` is a pure function of plain records (exposures as `Touch`,
orders as `OrderFact`, clicks); `recsys.feedback.impact_store` reads them from
the store and `recsys.feedback.impact_html` renders the result.

Two kinds of figures, and why both:

- **Attributed** (last touch, `recsys.feedback.attribution`): the orders each
  group's exposures are credited with, their revenue, margin and voucher cost.
  This is what a marketer reads as "what the newsletter sold"; it is not
  causal (a customer who would have bought anyway is credited too).
- **Treated vs control** (intent to treat): every customer who was due a
  group's list in the period is in the treated group (shown) or the control
  group (held out: the global control group, a campaign holdout). Each is
  followed from their first exposure of the group in the period for the
  group's window; conversion is "bought at least once in the window" and
  revenue per customer is the window's order value. The difference of the two
  means, with a 95% confidence interval (normal approximation with Welch's
  standard error), is the uplift the offers caused. Incremental revenue is
  that difference times the treated customers, and net of the voucher cost the
  treated group redeemed.

Small samples say so: with fewer than `MIN_CUSTOMERS` customers or
`MIN_CONVERSIONS` converters in either group, the verdict is "small sample"
and no significance is claimed, whatever the interval says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from recsys.feedback.attribution import OrderFact, Touch, attribute

MIN_CUSTOMERS = 100
MIN_CONVERSIONS = 10
Z95 = 1.959963984540054

#: `kind` of a group: an API placement, a campaign occasion, or one variant of an experiment.
KINDS = ("placement", "campaign", "variant")


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float

    def scaled(self, factor: float, shift: float = 0.0) -> Interval:
        return Interval(
            self.estimate * factor + shift, self.low * factor + shift, self.high * factor + shift
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": _round(self.estimate),
            "ci95": [_round(self.low), _round(self.high)],
            "excludes_zero": self.low > 0 or self.high < 0,
        }


def mean_difference(treated: Sequence[float], control: Sequence[float]) -> Interval | None:
    """treated mean - control mean, with a 95% interval (Welch); None if a group has < 2."""
    if len(treated) < 2 or len(control) < 2:
        return None
    mt, mc = _mean(treated), _mean(control)
    se = math.sqrt(_var(treated, mt) / len(treated) + _var(control, mc) / len(control))
    diff = mt - mc
    return Interval(diff, diff - Z95 * se, diff + Z95 * se)


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def _var(values: Sequence[float], mean: float) -> float:
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """One arm's customers, each followed for the group's window."""

    converted: tuple[float, ...]
    revenue: tuple[float, ...]
    voucher_cost: float

    @property
    def customers(self) -> int:
        return len(self.converted)

    @property
    def conversions(self) -> int:
        return int(sum(self.converted))

    def to_dict(self) -> dict[str, Any]:
        n = self.customers
        return {
            "customers": n,
            "converted": self.conversions,
            "conversion": _round(self.conversions / n) if n else None,
            "revenue": _round(math.fsum(self.revenue), 2),
            "revenue_per_customer": _round(_mean(self.revenue), 4) if n else None,
            "voucher_cost": _round(self.voucher_cost, 2),
        }


def _comparison(treated: Outcomes, control: Outcomes) -> dict[str, Any]:
    small = (
        min(treated.customers, control.customers) < MIN_CUSTOMERS
        or min(treated.conversions, control.conversions) < MIN_CONVERSIONS
    )
    conversion = mean_difference(treated.converted, control.converted)
    revenue = mean_difference(treated.revenue, control.revenue)
    out: dict[str, Any] = {
        "conversion": conversion.to_dict() if conversion else None,
        "revenue_per_customer": revenue.to_dict() if revenue else None,
        "incremental_revenue": None,
        "incremental_revenue_net_of_vouchers": None,
        "small_sample": small,
    }
    if revenue is not None:
        n = treated.customers
        out["incremental_revenue"] = revenue.scaled(n).to_dict()
        out["incremental_revenue_net_of_vouchers"] = revenue.scaled(
            n, -treated.voucher_cost
        ).to_dict()
    if conversion is None or revenue is None:
        out["verdict"] = "no comparison: a group has fewer than 2 customers"
    elif small:
        out["verdict"] = (
            f"small sample ({treated.customers} treated, {control.customers} control customers; "
            f"{treated.conversions} and {control.conversions} converted): no significance claimed"
        )
    elif conversion.low > 0:
        out["verdict"] = "conversion higher than control (95% interval above zero)"
    elif conversion.high < 0:
        out["verdict"] = "conversion lower than control (95% interval below zero)"
    else:
        out["verdict"] = "no significant difference in conversion"
    return out


@dataclass(frozen=True, slots=True)
class GroupKey:
    kind: str
    placement: str
    experiment: str | None = None
    variant: str | None = None

    @property
    def name(self) -> str:
        if self.kind == "variant":
            return f"{self.placement}: {self.experiment}/{self.variant}"
        return self.placement


def _keys(touch: Touch) -> list[GroupKey]:
    keys = [GroupKey("campaign" if touch.campaign else "placement", touch.placement)]
    if touch.experiment is not None and touch.variant is not None:
        keys.append(GroupKey("variant", touch.placement, touch.experiment, touch.variant))
    return keys


def compute_impact(
    touches: Sequence[Touch],
    orders: Sequence[OrderFact],
    clicked: Iterable[str],
    *,
    start: date,
    end: date,
    windows: Mapping[str, int] | None = None,
    generated_at: datetime | None = None,
    first_variants: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The impact report (impact.json's content) for exposures shown from `start` to `end`.

    `touches`: every exposure that may take an order's credit (those of the period
    and, for attribution, any other the caller has); `orders`: the orders from
    `start` to the end of the last window; `clicked`: the exposure ids with a click
    (one per exposure and item: an exposure with two clicked items is given twice).
    `first_variants`: experiment name -> the variant the others are compared with
    (the rules file's first); an experiment not named compares with its first
    variant in name order.
    """
    in_period = [t for t in touches if start <= t.shown_at.date() <= end]
    credit = attribute(orders, touches)
    by_customer: dict[str, list[OrderFact]] = {}
    for order in orders:
        by_customer.setdefault(order.customer_id, []).append(order)
    for history in by_customer.values():
        history.sort(key=lambda o: o.purchased_at)
    clicks: dict[str, int] = {}
    for exposure_id in clicked:
        clicks[exposure_id] = clicks.get(exposure_id, 0) + 1

    groups: dict[GroupKey, list[Touch]] = {}
    for touch in in_period:
        for key in _keys(touch):
            groups.setdefault(key, []).append(touch)
    credited: dict[GroupKey, list[tuple[OrderFact, Touch]]] = {}
    for order in orders:
        credit_to = credit.get(order.order_id)
        if credit_to is None or not start <= credit_to.shown_at.date() <= end:
            continue
        for key in _keys(credit_to):
            credited.setdefault(key, []).append((order, credit_to))

    rows = []
    baselines: dict[tuple[str, str], Outcomes] = {}
    first = dict(first_variants or {})

    def rank(k: GroupKey) -> tuple[Any, ...]:
        baseline = k.variant != first.get(k.experiment or "", k.variant)
        return (KINDS.index(k.kind), k.placement, k.experiment or "", baseline, k.variant or "")

    order_of_keys = sorted(groups, key=rank)
    for key in order_of_keys:
        members = groups[key]
        row = _group(key, members, credited.get(key, []), by_customer, clicks)
        if key.kind == "variant":
            treated = row.pop("_treated")
            ref = (key.placement, key.experiment or "")
            if ref not in baselines:
                baselines[ref] = treated
                row["vs_first_variant"] = None
            else:
                row["vs_first_variant"] = _comparison(treated, baselines[ref])
        else:
            row.pop("_treated")
        rows.append(row)
    return {
        "report": "impact",
        "version": 1,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "generated_at": generated_at.isoformat() if generated_at else None,
        "windows": dict(windows or {}),
        "thresholds": {"min_customers": MIN_CUSTOMERS, "min_conversions": MIN_CONVERSIONS},
        "groups": rows,
    }


def _group(
    key: GroupKey,
    members: Sequence[Touch],
    credited: Sequence[tuple[OrderFact, Touch]],
    by_customer: Mapping[str, Sequence[OrderFact]],
    clicks: Mapping[str, int],
) -> dict[str, Any]:
    shown = [t for t in members if not t.held_out]
    clicked_exposures = sum(1 for t in shown if clicks.get(t.exposure_id))
    # Each customer once: their first exposure of the group in the period decides the arm.
    first: dict[str, Touch] = {}
    for touch in sorted(members, key=lambda t: (t.shown_at, t.exposure_id)):
        first.setdefault(touch.customer_id, touch)
    treated = _outcomes([t for t in first.values() if not t.held_out], by_customer, credited)
    control = _outcomes([t for t in first.values() if t.held_out], by_customer, credited)

    attributed = [(o, t) for o, t in credited if not t.held_out]
    revenue = math.fsum(o.revenue for o, _ in attributed)
    voucher_cost = math.fsum(_voucher_cost(o, t) for o, t in attributed)
    costed = math.fsum(o.costed_revenue for o, _ in attributed)
    item_cost = math.fsum(o.cost for o, _ in attributed)
    buyers = {o.customer_id for o, _ in attributed}
    treated_customers = {t.customer_id for t in shown}
    return {
        "kind": key.kind,
        "name": key.name,
        "placement": key.placement,
        "experiment": key.experiment,
        "variant": key.variant,
        "exposures": len(shown),
        "held_out_exposures": len(members) - len(shown),
        "clicks": sum(clicks.get(t.exposure_id, 0) for t in shown),
        "ctr": _round(clicked_exposures / len(shown)) if shown else None,
        "attributed": {
            "orders": len(attributed),
            "customers": len(buyers),
            "conversion": (
                _round(len(buyers & treated_customers) / len(treated_customers))
                if treated_customers else None
            ),
            "revenue": _round(revenue, 2),
            "revenue_per_customer": (
                _round(revenue / len(treated_customers), 4) if treated_customers else None
            ),
            "voucher_orders": sum(1 for o, t in attributed if _voucher_cost(o, t) > 0),
            "voucher_cost": _round(voucher_cost, 2),
            # Margin over the lines whose item has a catalog cost, less the vouchers.
            "margin": _round(costed - item_cost - voucher_cost, 2),
            "cost_coverage": _round(costed / revenue) if revenue else None,
        },
        "treated": treated.to_dict(),
        "control": control.to_dict() if control.customers else None,
        "vs_control": _comparison(treated, control) if control.customers else None,
        "_treated": treated,
    }


def _voucher_cost(order: OrderFact, touch: Touch) -> float:
    """The discount an order redeemed: the voucher's percent of the order value as posted."""
    if order.voucher_code is None or order.voucher_code != touch.voucher_code:
        return 0.0
    return (touch.voucher_percent or 0.0) / 100.0 * max(order.revenue, 0.0)


def _outcomes(
    firsts: Sequence[Touch],
    by_customer: Mapping[str, Sequence[OrderFact]],
    credited: Sequence[tuple[OrderFact, Touch]],
) -> Outcomes:
    converted: list[float] = []
    revenue: list[float] = []
    for touch in firsts:
        window = [
            o for o in by_customer.get(touch.customer_id, ())
            if touch.shown_at <= o.purchased_at <= touch.until
        ]
        converted.append(1.0 if window else 0.0)
        revenue.append(math.fsum(o.revenue for o in window))
    customers = {t.customer_id for t in firsts}
    cost = math.fsum(_voucher_cost(o, t) for o, t in credited if o.customer_id in customers)
    return Outcomes(tuple(converted), tuple(revenue), cost)
