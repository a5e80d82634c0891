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
