from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.rules import RulesConfig, is_marketing, may_contact, parse_rules

from ._data import NOW

CONTACT = RulesConfig().contact  # 1 per 7 days
DAY = timedelta(days=1)


def test_first_contact_is_allowed() -> None:
    decision = may_contact(True, [], "newsletter", CONTACT, NOW)
    assert (decision.allowed, decision.reason) == (True, "allowed")


def test_cap_of_one_per_seven_days() -> None:
    decision = may_contact(True, [NOW - 3 * DAY], "anniversary", CONTACT, NOW)
    assert (decision.allowed, decision.reason) == (False, "cap_reached")
    assert decision.next_allowed_at == NOW + 4 * DAY
    # A contact exactly a period ago no longer counts.
    assert may_contact(True, [NOW - 7 * DAY], "newsletter", CONTACT, NOW).allowed
    assert not may_contact(
        True, [NOW - 7 * DAY + timedelta(seconds=1)], "newsletter", CONTACT, NOW
    ).allowed


def test_contacts_after_now_are_ignored() -> None:
    assert may_contact(True, [NOW + DAY], "newsletter", CONTACT, NOW).allowed


def test_opted_out_gets_no_marketing_but_does_get_order_confirmation() -> None:
    for placement in ("newsletter", "anniversary", "birthday"):
        decision = may_contact(False, [], placement, CONTACT, NOW)
        assert (decision.allowed, decision.reason) == (False, "opted_out")
    decision = may_contact(False, [NOW - DAY], "order_confirmation", CONTACT, NOW)
    assert (decision.allowed, decision.reason) == (True, "transactional")


def test_unknown_placements_count_as_marketing() -> None:
    assert is_marketing("sms-blast", CONTACT)
    assert not is_marketing("order_confirmation", CONTACT)
    assert not may_contact(False, [], "sms-blast", CONTACT, NOW).allowed


def test_larger_caps_and_zero() -> None:
    three = parse_rules({"contact": {"max_offers": 3, "period_days": 30}}).contact
    history = [NOW - 1 * DAY, NOW - 10 * DAY, NOW - 20 * DAY]
    decision = may_contact(True, history, "newsletter", three, NOW)
    assert not decision.allowed and decision.next_allowed_at == NOW + 10 * DAY
    assert may_contact(True, history[:2], "newsletter", three, NOW).allowed
    off = parse_rules({"contact": {"max_offers": 0}}).contact
    decision = may_contact(True, [], "newsletter", off, NOW)
    assert (decision.allowed, decision.next_allowed_at) == (False, None)


@settings(max_examples=300, derandomize=True)
@given(
    offsets=st.lists(st.integers(min_value=-20 * 86_400, max_value=20 * 86_400), max_size=6),
    max_offers=st.integers(min_value=0, max_value=3),
    period_days=st.integers(min_value=1, max_value=14),
)
def test_following_the_decisions_never_exceeds_the_cap(
    offsets: list[int], max_offers: int, period_days: int
) -> None:
    """Send whenever allowed, hour by hour: no window ever holds more than the cap."""
    config = parse_rules(
        {"contact": {"max_offers": max_offers, "period_days": period_days}}
    ).contact
    period = timedelta(days=period_days)
    sent: list[datetime] = []
    for hour in range(0, 24 * 30, 7):
        at = NOW + timedelta(hours=hour)
        decision = may_contact(True, sent, "newsletter", config, at)
        if decision.allowed:
            sent.append(at)
        elif decision.next_allowed_at is not None:
            assert decision.next_allowed_at > at
    for moment in sent:
        assert sum(1 for t in sent if moment - period < t <= moment) <= max_offers
    del offsets
