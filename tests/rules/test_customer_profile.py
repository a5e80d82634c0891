"""The customer profile's learned behaviour agrees with what the rules do, item by item."""

from __future__ import annotations

from datetime import date, timedelta

from recsys.customer_profile import CustomerProfile, build_profile
from recsys.offers import CustomerData
from recsys.records import Customer
from recsys.rules import CategoryBehaviour, already_bought
from recsys.rules.categories import ITEM_SCOPE

from ._data import CATALOG, NOW, SHIPPED, WEEK_WAIT, buy, cands, ctx, ids

# home/kitchen is learned regular, but this one mug design is rebought every 20 days.
LEARNED = {
    "home/kitchen": CategoryBehaviour("home/kitchen", "regular", 120, 0.05),
    f"{ITEM_SCOPE}mug": CategoryBehaviour(f"{ITEM_SCOPE}mug", "consumable", 40, 0.7, 20.0, 0.2, 20),
}
HISTORY = [
    buy("mug", 5),
    buy("tv-55", 7),
    buy("novel", 40),
    buy("novel", 20),
    buy("cookbook", 3),
    buy("cookbook", 2, quantity=-1),
]


def _profile() -> CustomerProfile:
    customer = Customer("c1", "c1@example.com", date(2024, 3, 1), date(1990, 6, 2))
    data = CustomerData("c1", customer, HISTORY)
    return build_profile(data, CATALOG, LEARNED, SHIPPED, NOW)


def test_an_items_own_learned_entry_is_shown_and_dated_like_the_rule() -> None:
    by_category = {c.category: c for c in _profile().categories}
    kitchen = by_category["home/kitchen"]
    assert kitchen.kind == "regular" and kitchen.source == "learned"
    (mug,) = kitchen.items
    assert mug.own_entry and mug.kind == "consumable" and mug.interval_days == 20
    back = (NOW - timedelta(days=5) + timedelta(days=20)).date()
    assert mug.back_on == back and kitchen.restock_due == back
    # The rule agrees: not before that day, back on it (order confirmation looks no
    # further than today; the newsletter 30 days ahead).
    context = dict(behaviours=LEARNED, placement="order_confirmation")
    assert already_bought(cands("mug"), ctx(HISTORY, now=NOW + timedelta(days=14), **context)) == []
    assert ids(already_bought(cands("mug"), ctx(HISTORY, now=NOW + timedelta(days=15), **context)))
    # Due in 15 days: within the shipped newsletter's 60-day horizon now; with a week's
    # wait after the purchase (5 days ago), from NOW + 2.
    letter = dict(behaviours=LEARNED, placement="newsletter")
    assert ids(already_bought(cands("mug"), ctx(HISTORY, **letter)))
    waiting = dict(letter, config=WEEK_WAIT)
    assert already_bought(cands("mug"), ctx(HISTORY, now=NOW + timedelta(days=1), **waiting)) == []
    assert ids(already_bought(cands("mug"), ctx(HISTORY, now=NOW + timedelta(days=2), **waiting)))


def test_durables_block_their_category_and_habits_and_returns_are_told_apart() -> None:
    by_category = {c.category: c for c in _profile().categories}
    tv = by_category["electronics/tv/oled"]
    assert tv.kind == "durable" and tv.scope == "electronics/tv" and tv.source == "override"
    assert tv.cooldown_until == (NOW - timedelta(days=7) + timedelta(days=730)).replace(tzinfo=None)
    assert tv.items[0].back_on is None
    (novel,) = by_category["books/fiction"].items
    # bought on two days 20 days apart: their own cycle, half of it by the shipped rules
    assert novel.back_reason == "you buy this regularly"
    assert novel.back_on == (
        NOW - timedelta(days=20) + timedelta(days=20 * SHIPPED.categories.personal_due_share)
    ).date()
    assert "books/cooking" not in by_category  # returned in full: nothing kept
