"""UTC normalisation: the SPEC says timezone-naive timestamps are UTC.

Rules compare the caller's `now` with stored purchase times; mixing naive and
aware datetimes raises in Python, so every comparison goes through `utc()`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

# The years an explicit `now` (a replay's `as_of`, a campaign's date) may fall in: far
# enough either side of any shop's history, and far from datetime's own limits (years 1
# and 9999), which cooldowns and restock horizons would otherwise step past.
REPLAY_YEARS = (1900, 2999)


def replayable(moment: date) -> bool:
    """Whether a day or instant lies in `REPLAY_YEARS` (datetimes are dates too)."""
    return REPLAY_YEARS[0] <= moment.year <= REPLAY_YEARS[1]


def replay_range() -> str:
    """The replay years as a message names them."""
    return f"{REPLAY_YEARS[0]} to {REPLAY_YEARS[1]}"


def utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (naive values are taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def naive_utc(moment: datetime) -> datetime:
    """`moment` as a naive UTC datetime: free for the naive values the store returns.

    Loops over a customer's purchase lines compare in naive UTC and convert only
    their results; `utc()` on every line would allocate a datetime per line.
    """
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
