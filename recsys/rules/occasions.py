"""Membership anniversaries and birthdays: calendar arithmetic for the campaign job.

February 29 falls on February 28 in years without one (SPEC), so a customer
who joined on a leap day is celebrated every year, not every fourth.
"""

from __future__ import annotations

import calendar
from datetime import date


def anniversary_on(joined: date, year: int) -> date:
    """The date in `year` that celebrates `joined` (Feb 29 -> Feb 28 in non-leap years)."""
    if joined.month == 2 and joined.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return joined.replace(year=year)


def is_anniversary(joined: date, day: date) -> bool:
    """True when `day` is a membership anniversary (the join day itself is not one)."""
    return day.year > joined.year and day == anniversary_on(joined, day.year)


def years_of_membership(joined: date, day: date) -> int:
    """Completed years between `joined` and `day` (0 before the first anniversary, never < 0)."""
    years = day.year - joined.year
    if years > 0 and day < anniversary_on(joined, day.year):
        years -= 1
    return max(years, 0)


def next_anniversary(joined: date, today: date) -> date:
    """The first anniversary on or after `today`: today counts when it is the anniversary.

    "On or after" matches the campaign job, which mails on the day itself, so the
    loyalty endpoint and the offer agree ("your anniversary is today").
    """
    year = max(today.year, joined.year + 1)
    candidate = anniversary_on(joined, year)
    if candidate < today:
        candidate = anniversary_on(joined, year + 1)
    return candidate


# Birthdays follow the same calendar; separate names keep call sites readable.


def birthday_on(birthday: date, year: int) -> date:
    """The date in `year` that celebrates `birthday` (Feb 29 -> Feb 28 in non-leap years)."""
    return anniversary_on(birthday, year)


def is_birthday(birthday: date, day: date) -> bool:
    """True when `day` is a birthday (the day of birth itself is not one)."""
    return is_anniversary(birthday, day)


def age_on(birthday: date, day: date) -> int:
    """Completed years of age on `day`."""
    return years_of_membership(birthday, day)


def next_birthday(birthday: date, today: date) -> date:
    """The first birthday on or after `today`."""
    return next_anniversary(birthday, today)
