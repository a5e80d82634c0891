"""The campaign's output stream: a JSON Lines file opened for appending, or stdout."""

from __future__ import annotations

import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from recsys.campaign.job import CampaignError


@contextmanager
def open_output(path: Path | None) -> Iterator[TextIO]:
    """Open `path` for appending (stdout when None), exclusively locked for this job.

    Appending, not truncating: a rerun of the same day completes the file that a
    killed run started, so the file ends up with everyone exactly once. The lock
    refuses a second job writing to the same file at the same time, whose lines
    would interleave. Raises CampaignError when the file cannot be opened.
    """
    if path is None:
        yield sys.stdout
        return
    try:
        handle = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise CampaignError(f"cannot write to {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise CampaignError(f"another campaign job is writing to {path}") from exc
        yield handle
