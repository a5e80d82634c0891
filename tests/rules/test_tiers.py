from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.records import Purchase
from recsys.rules import LoyaltyStatus, RulesConfig, loyalty_status, parse_rules, voucher_percent
from recsys.rules.config import LoyaltyConfig

from ._data import NOW

LOYALTY = RulesConfig().loyalty


def spend(amount: float, days_ago: float, order_id: str = "o1", now: datetime = NOW) -> Purchase:
    return Purchase(order_id, "x", 1, amount, now - timedelta(days=days_ago))


def status(purchases: list[Purchase], joined: date | None = None) -> LoyaltyStatus:
    return loyalty_status(purchases, joined, LOYALTY, NOW)


def test_new_customer_is_a_member_with_the_way_to_silver() -> None:
    result = status([])
    assert (result.tier, result.spend, result.orders) == ("Member", 0.0, 0)
    assert (result.next_tier, result.spend_to_next_tier) == ("Silver", 250.0)
    assert result.member_since is None and result.next_anniversary is None
    assert result.window_days == 365
    assert result.anniversary_voucher_percent == 5


def test_tier_by_spend_in_the_window() -> None:
    result = status([spend(600, 10, "a"), spend(500, 100, "b")])
    assert (result.tier, result.spend, result.orders) == ("Gold", 1100.0, 2)
    assert (result.next_tier, result.spend_to_next_tier) == ("Platinum", 1900.0)
    assert "Early access to sales" in result.benefits


def test_spend_outside_the_window_does_not_count() -> None:
    result = status([spend(5000, 365), spend(100, 364, "b")])
    assert (result.tier, result.spend, result.orders) == ("Member", 100.0, 1)


def test_purchases_after_now_are_ignored() -> None:
    assert status([spend(5000, -1)]).tier == "Member"


def test_returns_reduce_spend_and_are_not_orders() -> None:
    bought = Purchase("o1", "tv", 2, 700, NOW - timedelta(days=30))
    returned = Purchase("r1", "tv", -1, 700, NOW - timedelta(days=20))
    result = status([bought, returned])
    assert (result.spend, result.orders, result.tier) == (700.0, 1, "Silver")


def test_spend_never_goes_negative() -> None:
    # A return in the window of something bought before it.
    result = status([spend(900, 400), Purchase("r", "x", -1, 900, NOW - timedelta(days=5))])
    assert result.spend == 0.0


def test_top_tier_has_no_next() -> None:
    result = status([spend(3000, 1)])
    assert (result.tier, result.next_tier, result.spend_to_next_tier) == ("Platinum", None, None)
    assert result.orders_to_next_tier is None


def test_order_thresholds() -> None:
    config = parse_rules(
        {
            "loyalty": {
                "tiers": [
                    {"name": "Member", "min_spend": 0},
                    {"name": "Regular", "min_spend": 100, "min_orders": 3},
                ]
            }
        }
    ).loyalty
    one_big_order = loyalty_status([spend(500, 3)], None, config, NOW)
    assert one_big_order.tier == "Member"
    assert (one_big_order.spend_to_next_tier, one_big_order.orders_to_next_tier) == (0.0, 2)
    three = [spend(40, d, f"o{d}") for d in (1, 2, 3)]
    assert loyalty_status(three, None, config, NOW).tier == "Regular"


def test_member_since_defaults_to_the_first_purchase() -> None:
    purchases = [spend(10, 30), spend(10, 400, "old")]
    assert status(purchases).member_since == (NOW - timedelta(days=400)).date()
    assert status(purchases, joined=date(2019, 1, 1)).member_since == date(2019, 1, 1)


def test_next_anniversary_counts_today_and_handles_feb_29() -> None:
    assert status([], joined=date(2020, 11, 22)).next_anniversary == date(2026, 11, 22)
    assert status([], joined=date(2020, 11, 21)).next_anniversary == date(2027, 11, 21)
    leap = loyalty_status([], date(2024, 2, 29), LOYALTY, datetime(2026, 2, 1))
    assert leap.next_anniversary == date(2026, 2, 28)


def test_naive_now_is_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert loyalty_status([spend(300, 1)], None, LOYALTY, naive) == status([spend(300, 1)])


def test_to_dict_is_json_ready() -> None:
    data = status([spend(300, 1)], joined=date(2020, 1, 1)).to_dict()
    assert data["tier"] == "Silver"
    assert data["member_since"] == "2020-01-01"
    assert data["next_anniversary"] == "2027-01-01"
    assert isinstance(data["benefits"], list)


def test_voucher_percent() -> None:
    assert voucher_percent(LOYALTY, "Gold", "anniversary") == 15
    assert voucher_percent(LOYALTY, "Platinum", "birthday") == 20


@settings(max_examples=200, derandomize=True)
@given(
    low=st.floats(min_value=0, max_value=10_000, allow_nan=False),
    extra=st.floats(min_value=0, max_value=10_000, allow_nan=False),
    orders=st.integers(min_value=1, max_value=5),
)
def test_tier_is_monotone_in_spend(low: float, extra: float, orders: int) -> None:
    def tier_rank(total: float) -> int:
        lines = [spend(total / orders, i + 1, f"o{i}") for i in range(orders)]
        names = [t.name for t in LOYALTY.tiers]
        return names.index(status(lines).tier)

    assert tier_rank(low) <= tier_rank(low + extra)


@settings(max_examples=100, derandomize=True)
@given(amount=st.floats(min_value=1, max_value=5000), returned=st.floats(min_value=0, max_value=1))
def test_a_return_never_raises_spend(amount: float, returned: float) -> None:
    bought = spend(amount, 10)
    back = Purchase("r", "x", -returned, amount, NOW - timedelta(days=5))
    assert status([bought, back]).spend <= status([bought]).spend


def test_config_type_is_the_loyalty_section() -> None:
    assert isinstance(LOYALTY, LoyaltyConfig)
