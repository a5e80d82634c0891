from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.rules import (
    age_on,
    anniversary_on,
    birthday_on,
    is_anniversary,
    is_birthday,
    next_anniversary,
    years_of_membership,
)

LEAP_DAY = date(2024, 2, 29)


def test_feb_29_falls_on_feb_28_in_other_years() -> None:
    assert anniversary_on(LEAP_DAY, 2025) == date(2025, 2, 28)
    assert anniversary_on(LEAP_DAY, 2028) == date(2028, 2, 29)
    assert is_anniversary(LEAP_DAY, date(2025, 2, 28))
    assert not is_anniversary(LEAP_DAY, date(2025, 3, 1))
    assert is_anniversary(LEAP_DAY, date(2028, 2, 29))
    assert not is_anniversary(LEAP_DAY, date(2028, 2, 28))


def test_join_day_is_not_an_anniversary() -> None:
    assert not is_anniversary(date(2025, 5, 1), date(2025, 5, 1))
    assert is_anniversary(date(2025, 5, 1), date(2026, 5, 1))


def test_years_of_membership() -> None:
    joined = date(2020, 6, 15)
    assert years_of_membership(joined, date(2020, 6, 15)) == 0
    assert years_of_membership(joined, date(2021, 6, 14)) == 0
    assert years_of_membership(joined, date(2021, 6, 15)) == 1
    assert years_of_membership(joined, date(2026, 1, 1)) == 5
    assert years_of_membership(joined, date(2019, 1, 1)) == 0
    assert years_of_membership(LEAP_DAY, date(2025, 2, 28)) == 1
    assert years_of_membership(LEAP_DAY, date(2025, 2, 27)) == 0


def test_next_anniversary_counts_today() -> None:
    joined = date(2020, 11, 22)
    assert next_anniversary(joined, date(2026, 11, 22)) == date(2026, 11, 22)
    assert next_anniversary(joined, date(2026, 11, 23)) == date(2027, 11, 22)
    assert next_anniversary(joined, date(2020, 11, 22)) == date(2021, 11, 22)
    assert next_anniversary(LEAP_DAY, date(2026, 3, 1)) == date(2027, 2, 28)


def test_birthdays_follow_the_same_calendar() -> None:
    born = date(1988, 2, 29)
    assert birthday_on(born, 2026) == date(2026, 2, 28)
    assert is_birthday(born, date(2026, 2, 28))
    assert age_on(born, date(2026, 2, 28)) == 38


@settings(max_examples=300, derandomize=True)
@given(
    joined=st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)),
    offset=st.integers(min_value=0, max_value=3000),
)
def test_exactly_one_anniversary_per_year(joined: date, offset: int) -> None:
    today = joined + timedelta(days=offset)
    upcoming = next_anniversary(joined, today)
    assert upcoming >= today
    assert is_anniversary(joined, upcoming)
    days = [
        upcoming - timedelta(days=k) for k in range(1, 366) if upcoming - timedelta(days=k) > joined
    ]
    # No other anniversary between today and the next one.
    assert not any(is_anniversary(joined, d) for d in days if d >= today)
    assert years_of_membership(joined, upcoming) == upcoming.year - joined.year
