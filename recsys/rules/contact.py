"""Contact policy: may we send this customer a marketing offer now?

Separate from the candidate rules because it decides whether to contact at
all, not what to show. Pure: the caller passes the contact log's timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from recsys.rules._time import utc
from recsys.rules.config import PLACEMENTS, ContactConfig

ContactReason = Literal["transactional", "opted_out", "cap_reached", "allowed"]


@dataclass(frozen=True, slots=True)
class ContactDecision:
    """`allowed`, why, and (when capped) the first UTC instant a contact would be allowed."""

    allowed: bool
    reason: ContactReason
    next_allowed_at: datetime | None = None


def is_marketing(placement: str, config: ContactConfig) -> bool:
    """True for marketing placements; an unknown placement counts as marketing (fail safe)."""
    return placement in config.marketing_placements or placement not in PLACEMENTS


def may_contact(
    opt_in: bool,
    contact_history: Iterable[datetime],
    placement: str,
    config: ContactConfig,
    now: datetime,
) -> ContactDecision:
    """Decide one contact.

    Transactional placements (order_confirmation) are always allowed and
    ignore the cap. Marketing needs `opt_in` and fewer than `max_offers`
    earlier contacts in `(now - period_days, now]`: a contact exactly
    `period_days` ago no longer counts. `contact_history` should hold the
    customer's earlier marketing contacts; instants after `now` are ignored.
    """
    if not is_marketing(placement, config):
        return ContactDecision(True, "transactional")
    if not opt_in:
        return ContactDecision(False, "opted_out")
    now = utc(now)
    period = timedelta(days=config.period_days)
    recent = sorted(t for t in map(utc, contact_history) if now - period < t <= now)
    if len(recent) >= config.max_offers:
        # The cap lifts when enough of the recent contacts have aged out of the
        # window; with max_offers = 0 it never does.
        next_at = recent[len(recent) - config.max_offers] + period if config.max_offers else None
        return ContactDecision(False, "cap_reached", next_at)
    return ContactDecision(True, "allowed")
