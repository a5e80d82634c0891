"""Last-touch attribution and the impact figures, on plain records."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recsys.feedback.attribution import OrderFact, Touch, attribute, window_end
from recsys.feedback.impact import compute_impact, mean_difference
from recsys.rules.config import AttributionConfig

T0 = datetime(2026, 11, 22, 9)
CONFIG = AttributionConfig()


def _touch(eid: str, placement: str, shown: datetime, customer: str = "C1", **kw: object) -> Touch:
    valid = kw.pop("valid_until", None)
    return Touch(eid, customer, placement, shown,
                 window_end(placement, shown, valid, CONFIG), **kw)  # type: ignore[arg-type]


def _order(oid: str, at: datetime, customer: str = "C1", **kw: object) -> OrderFact:
    return OrderFact(oid, customer, at, 100.0, **kw)  # type: ignore[arg-type]


def test_windows() -> None:
    assert window_end("newsletter", T0, None, CONFIG) == T0 + timedelta(days=7)
    # A campaign offer counts through its voucher's last day; without one, 30 days.
    assert window_end("anniversary", T0, date(2026, 12, 22), CONFIG) == datetime(
        2026, 12, 22, 23, 59, 59, 999999
    )
    assert window_end("birthday", T0, None, CONFIG).date() == date(2026, 12, 22)


def test_voucher_then_named_exposure_then_last_open_touch() -> None:
    campaign = _touch("E-camp", "anniversary", T0, voucher_code="V1", voucher_percent=10,
                      valid_until=date(2026, 12, 22))
    news = _touch("E-news", "newsletter", T0 + timedelta(days=2))
    later = _touch("E-conf", "order_confirmation", T0 + timedelta(days=20))
    touches = [campaign, news, later]
    orders = [
        _order("O-voucher", T0 + timedelta(days=3), voucher_code="V1"),
        _order("O-named", T0 + timedelta(days=3), exposure_id="E-camp"),
        _order("O-last", T0 + timedelta(days=3)),  # the newsletter is the last touch
        # The newsletter's 7 days are over: the campaign's validity still holds.
        _order("O-open", T0 + timedelta(days=12)),
        _order("O-before", T0 - timedelta(hours=1)),
        _order("O-other", T0 + timedelta(days=3), customer="C2"),
        _order("O-after-all", T0 + timedelta(days=40)),
    ]
    credit = attribute(orders, touches)
    assert {k: v.exposure_id if v else None for k, v in credit.items()} == {
        "O-voucher": "E-camp", "O-named": "E-camp", "O-last": "E-news", "O-open": "E-camp",
        "O-before": None, "O-other": None, "O-after-all": None,
    }


@given(
    st.lists(st.tuples(st.sampled_from(["newsletter", "anniversary", "order_confirmation"]),
                       st.integers(0, 60 * 24 * 40)), min_size=1, max_size=8),
    st.lists(st.integers(0, 60 * 24 * 60), min_size=1, max_size=8),
)
def test_the_credited_touch_is_the_newest_one_still_open(
    shown: list[tuple[str, int]], bought: list[int]
) -> None:
    touches = [
        _touch(f"E{i}", p, T0 + timedelta(minutes=m)) for i, (p, m) in enumerate(shown)
    ]
    orders = [_order(f"O{i}", T0 + timedelta(minutes=m)) for i, m in enumerate(bought)]
    credit = attribute(orders, touches)
    for order in orders:
        open_touches = [t for t in touches if t.shown_at <= order.purchased_at <= t.until]
        got = credit[order.order_id]
        if not open_touches:
            assert got is None
        else:
            assert got is not None
            assert got.shown_at == max(t.shown_at for t in open_touches)


def test_mean_difference_interval() -> None:
    # 30 of 100 against 20 of 100: +0.10; sample variances (n - 1), so the standard
    # error is sqrt((0.21 + 0.16) / 99).
    treated = [1.0] * 30 + [0.0] * 70
    control = [1.0] * 20 + [0.0] * 80
    interval = mean_difference(treated, control)
    assert interval is not None
    assert interval.estimate == pytest.approx(0.10)
    assert interval.high - interval.estimate == pytest.approx(1.96 * (0.37 / 99) ** 0.5, rel=1e-4)
    assert mean_difference([1.0], control) is None


def test_report_groups_figures_and_small_samples() -> None:
    touches = [
        _touch("E1", "newsletter", T0, "C1"),
        _touch("E2", "newsletter", T0, "C2"),
        _touch("E3", "newsletter", T0, "C3", held_out=True),
        _touch("E4", "newsletter", T0, "C4", held_out=True),
        _touch("E5", "anniversary", T0, "C1", voucher_code="V1", voucher_percent=10,
               experiment="x", variant="a", valid_until=date(2026, 12, 22)),
    ]
    orders = [
        OrderFact("O1", "C1", T0 + timedelta(days=1), 200.0, cost=120.0, costed_revenue=200.0,
                  voucher_code="V1"),
        OrderFact("O2", "C2", T0 + timedelta(days=2), 50.0),
        OrderFact("O3", "C3", T0 + timedelta(days=2), 80.0),
    ]
    report = compute_impact(touches, orders, ["E1", "E1", "E2"],
                            start=T0.date(), end=T0.date())
    groups = {g["name"]: g for g in report["groups"]}
    assert list(groups) == ["newsletter", "anniversary", "anniversary: x/a"]
    news = groups["newsletter"]
    assert (news["exposures"], news["held_out_exposures"], news["clicks"]) == (2, 2, 3)
    assert news["ctr"] == 1.0
    # O1 names the voucher, so the anniversary takes it; O2 is the newsletter's.
    assert news["attributed"]["orders"] == 1 and news["attributed"]["revenue"] == 50.0
    assert news["treated"] == {
        "customers": 2, "converted": 2, "conversion": 1.0, "revenue": 250.0,
        "revenue_per_customer": 125.0, "voucher_cost": 0.0,
    }
    assert news["control"]["converted"] == 1 and news["control"]["revenue"] == 80.0
    assert news["vs_control"]["small_sample"] is True
    assert "small sample" in news["vs_control"]["verdict"]
    anniversary = groups["anniversary"]
    assert anniversary["attributed"]["voucher_cost"] == 20.0
    assert anniversary["attributed"]["margin"] == 200.0 - 120.0 - 20.0
    assert anniversary["vs_control"] is None  # nobody held out of it


def test_a_small_sample_claims_no_significance_even_when_its_interval_excludes_zero() -> None:
    # 60 shown (45 buy) against 60 held out (5 buy): the interval is far above zero,
    # but under 100 customers a side the report says so instead of claiming an effect.
    touches = [_touch(f"T{i}", "newsletter", T0, f"T{i}") for i in range(60)]
    touches += [_touch(f"H{i}", "newsletter", T0, f"H{i}", held_out=True) for i in range(60)]
    orders = [_order(f"OT{i}", T0 + timedelta(days=1), f"T{i}") for i in range(45)]
    orders += [_order(f"OH{i}", T0 + timedelta(days=1), f"H{i}") for i in range(5)]
    report = compute_impact(touches, orders, [], start=T0.date(), end=T0.date())
    versus = report["groups"][0]["vs_control"]
    conversion = versus["conversion"]
    assert conversion["estimate"] == pytest.approx(40 / 60)
    assert conversion["excludes_zero"] is True and conversion["ci95"][0] > 0.5
    assert versus["small_sample"] is True
    assert versus["verdict"].startswith("small sample") and "no significance" in versus["verdict"]
    # The same effect with enough customers is claimed.
    touches = [_touch(f"T{i}", "newsletter", T0, f"T{i}") for i in range(120)]
    touches += [_touch(f"H{i}", "newsletter", T0, f"H{i}", held_out=True) for i in range(120)]
    orders = [_order(f"OT{i}", T0 + timedelta(days=1), f"T{i}") for i in range(90)]
    orders += [_order(f"OH{i}", T0 + timedelta(days=1), f"H{i}") for i in range(10)]
    versus = compute_impact(touches, orders, [], start=T0.date(), end=T0.date())["groups"][0][
        "vs_control"
    ]
    assert versus["small_sample"] is False and "higher than control" in versus["verdict"]
