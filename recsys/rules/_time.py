"""UTC normalisation: the SPEC says timezone-naive timestamps are UTC.

Rules compare the caller's `now` with stored purchase times; mixing naive and
aware datetimes raises in Python, so every comparison goes through `utc()`.
"""

from __future__ import annotations

from datetime import UTC, datetime


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
