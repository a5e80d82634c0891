"""Experiment arms and the exposure log on the recommendation path.

`arm_for` picks the model and rules a customer's variant asks for (or the served
ones); `log_exposure` queues what was returned and hands back its `exposure_id`.
A list suppressed by the contact policy (opted out, capped) or empty is not an
exposure (`exposure_id` null); a held-out control customer is logged as
`held_out`, with a held-out contact-log row, so their later purchases are
measured against the customers who were shown the list.

`send=true` (the caller mails the list) makes a served marketing list a contact:
`record_send` writes its exposure, marked sent, before the answer goes out, so the
contact cap counts it on the next call (`recsys.store.contacts`).
"""

from __future__ import annotations

from datetime import datetime

from api.deps import Serving
from recsys.experiments import NO_ARM, Arm
from recsys.offers import Offer, ServingModel
from recsys.rules.config import RulesConfig
from recsys.rules.contact import is_marketing
from recsys.store.contacts import record_send
from recsys.store.feedback import Exposure, HeldOutContact, new_exposure_id


def arm_for(
    serving: Serving, customer_id: str | None, placement: str
) -> tuple[Arm, ServingModel, RulesConfig]:
    arm = serving.plan.arm(customer_id, placement) if serving.plan.by_placement else NO_ARM
    model = serving.model
    if arm.model_version is not None and arm.model_version != model.version:
        model = serving.variant_models.get(arm.model_version) or model
    return arm, model, arm.rules or serving.rules


def log_exposure(serving: Serving, offer: Offer, arm: Arm, now: datetime) -> str | None:
    writer = serving.exposures
    if writer is None:
        return None
    held_out = offer.suppressed == "held_out"
    if not held_out and not offer.items:
        return None
    exposure_id = new_exposure_id()
    writer.record(
        _exposure(exposure_id, offer, arm, now, held_out),
        HeldOutContact(offer.customer_id, offer.placement, now.date(), now, exposure_id)
        if held_out and offer.customer_id is not None
        else None,
    )
    return exposure_id


def is_send(offer: Offer, rules: RulesConfig) -> bool:
    """Whether a list asked for with `send=true` is a contact: served items of a marketing
    placement to a known customer id (transactional mail never counts toward the cap)."""
    return (
        offer.customer_id is not None
        and offer.suppressed is None
        and bool(offer.items)
        and is_marketing(offer.placement, rules.contact)
    )


def log_served(
    serving: Serving, offer: Offer, arm: Arm, rules: RulesConfig, now: datetime, *, send: bool
) -> str | None:
    """Log a served list: a contact when the caller sends it and it counts as one
    (`is_send`), else an exposure; returns the exposure id, if any."""
    if send and is_send(offer, rules):
        return log_send(serving, offer, arm, now)
    return log_exposure(serving, offer, arm, now)


def log_send(serving: Serving, offer: Offer, arm: Arm, now: datetime) -> str:
    """Record a sent marketing list as a contact (synchronously); returns its exposure id."""
    exposure_id = new_exposure_id()
    exposure = _exposure(exposure_id, offer, arm, now)
    with serving.store.begin() as conn:
        record_send(conn, exposure)
    return exposure_id


def _exposure(
    exposure_id: str, offer: Offer, arm: Arm, now: datetime, held_out: bool = False
) -> Exposure:
    return Exposure(
        exposure_id,
        offer.customer_id,
        offer.placement,
        offer.model_version,
        tuple(item.item_id for item in offer.items),
        now,
        arm.experiment,
        arm.variant,
        held_out,
    )
