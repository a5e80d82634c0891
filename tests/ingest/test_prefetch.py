"""The read-ahead helper keeps order, re-raises the producer's error, and stops early cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recsys.ingest.prefetch import prefetch


def test_yields_everything_in_order() -> None:
    assert list(prefetch(iter(range(100)))) == list(range(100))


def test_producer_error_reaches_the_consumer_after_the_good_items() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken line 3")

    seen = []
    with pytest.raises(ValueError, match="broken line 3"):
        for item in prefetch(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_consumer_stopping_early_closes_the_producer() -> None:
    closed = []

    def items() -> Iterator[int]:
        try:
            yield from range(1_000_000)
        finally:
            closed.append(True)

    stream = prefetch(items())
    assert next(stream) == 0
    stream.close()  # type: ignore[attr-defined]
    assert closed == [True]
