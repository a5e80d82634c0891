"""Margin-aware vouchers: the cap from catalog cost, the likely-buyer option, the reasons."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.records import Item, Purchase
from recsys.rules.config import VouchersConfig
from recsys.rules.vouchers import buy_probability, choose_voucher, margin_cap

NOW = datetime(2026, 11, 22, 9)
SKIP = VouchersConfig(skip_likely_buyers=True)


def _item(price: float | None, cost: float | None) -> Item:
    return Item(f"I{price}-{cost}", price=price, cost=cost)


def test_the_cap_keeps_the_floor_exactly() -> None:
    # price 100, cost 72: at 20% off the price is 80 and the margin 8/80 = 10%.
    assert margin_cap([_item(100, 72)], 0.10) == 20
    assert margin_cap([_item(100, 72)], 0.0) == 28
    # Items are pooled: 100/50 and 100/90 are 200/140, a cap of 1 - 140/180 = 22%.
    assert margin_cap([_item(100, 50), _item(100, 90)], 0.10) == 22
    # Items without a cost say nothing; none at all: no cap.
    assert margin_cap([_item(100, 72), _item(50, None)], 0.10) == 20
    assert margin_cap([_item(100, None)], 0.10) is None
    # Already below the floor at full price: nothing can be given.
    assert margin_cap([_item(100, 95)], 0.10) == 0


@given(
    st.lists(
        st.tuples(st.floats(1, 5000), st.floats(0, 1.2)).map(lambda t: _item(t[0], t[0] * t[1])),
        min_size=1, max_size=6,
    ),
    st.floats(0, 0.9),
)
def test_the_capped_percent_never_breaks_the_floor(items: list[Item], floor: float) -> None:
    cap = margin_cap(items, floor)
    assert cap is not None and 0 <= cap <= 100
    price = sum(i.price or 0 for i in items)
    cost = sum(i.cost or 0 for i in items)
    if 0 < cap < 100:  # at 100% the price is 0 and the margin undefined
        discounted = price * (1 - cap / 100)
        assert (discounted - cost) / discounted >= floor - 1e-9
    if cap < 100:
        # One point more would break it (the cap is the largest such percent).
        more = price * (1 - (cap + 1) / 100)
        assert more <= 0 or (more - cost) / more < floor + 1e-9


@pytest.mark.parametrize(
    ("proposed", "items", "probability", "config", "expected"),
    [
        (15, [_item(100, 50)], 0.1, VouchersConfig(), (15, "tier")),
        (15, [_item(100, 80)], 0.1, VouchersConfig(), (11, "margin_cap")),
        (15, [_item(100, 95)], 0.1, VouchersConfig(), (None, "margin_floor")),
        (15, [_item(100, None)], 0.1, VouchersConfig(), (15, "tier")),
        (0, [_item(100, 50)], 0.1, VouchersConfig(), (None, "no_tier_voucher")),
        # The likely-buyer option is off by default, and on it takes the voucher away.
        (15, [_item(100, 50)], 0.95, VouchersConfig(), (15, "tier")),
        (15, [_item(100, 50)], 0.95, SKIP, (None, "likely_buyer")),
        (15, [_item(100, 50)], 0.5, SKIP, (15, "tier")),
    ],
)
def test_each_choice_has_its_reason(
    proposed: int, items: list[Item], probability: float, config: VouchersConfig,
    expected: tuple[int | None, str],
) -> None:
    choice = choose_voucher(proposed, items, config, probability)
    assert (choice.percent, choice.reason) == expected and choice.proposed == proposed


def test_a_variant_percent_says_variant() -> None:
    choice = choose_voucher(3, [_item(100, 50)], VouchersConfig(), 0.0, from_variant=True)
    assert (choice.percent, choice.reason) == (3, "variant")


def test_buy_probability_follows_the_purchase_day_rate() -> None:
    def bought(days_ago: int, quantity: float = 1.0) -> Purchase:
        return Purchase(f"O{days_ago}", "I1", quantity, 10.0, NOW - timedelta(days=days_ago))

    assert buy_probability([], NOW, 30) == 0.0
    # 73 purchase days a year (one in five) over 30 days: 1 - exp(-6).
    weekly = [bought(d) for d in range(1, 366, 5)]
    assert len(weekly) == 73
    assert buy_probability(weekly, NOW, 30) == pytest.approx(1 - 2.718281828 ** -6, rel=1e-6)
    # Older than a year, returns, and two lines on one day do not count more.
    assert buy_probability([bought(400), bought(3, -1), bought(3), bought(3)], NOW, 365) == (
        pytest.approx(1 - 2.718281828 ** -1, rel=1e-6)
    )
