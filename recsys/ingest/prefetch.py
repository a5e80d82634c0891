"""Run an iterator one step ahead in a thread, so reading and validating overlap writing.

polars, pyarrow and the database drivers release the GIL while they work, so
preparing batch n+1 while batch n is being written uses the second core.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield what `items` yields, computed ahead in a thread; at most `depth` results wait.

    An exception raised by `items` is re-raised here, in the consumer. When the
    consumer stops early the producer is told to stop and `items` is closed.
    """
    results: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            try:
                results.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    break
            else:
                put((True, _DONE))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((False, exc))
        finally:
            if isinstance(items, Generator):
                items.close()

    thread = threading.Thread(target=work, name="ingest-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = results.get()
            if not ok:
                assert isinstance(item, BaseException)
                raise item
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)
