"""The campaign's crash journal: the batch in flight, so a rerun can finish writing it.

Order per batch (see docs/campaign.md): stage the batch's lines here (fsync),
commit contact log + vouchers, append the lines to the output (fsync), clear
the journal. A `kill -9` can land between any two steps:

- before the commit: the staged codes are not in the contact log, so recovery
  drops them and the rerun selects those customers afresh;
- after the commit, before the output is complete: recovery finds the staged
  lines whose exposure id (or, for lines without one, voucher code) *is* in the
  contact log (both are random, so only the job that won the insert can hold
  them) and emits those not already in the output file the journal names;
- after the output, before clearing: every staged line is in that file already,
  so nothing is emitted.

Each job has its own journal file, locked with `flock` while the job lives, so
a rerun never recovers the batch of a job that is still running.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, TextIO

import structlog
from sqlalchemy import Engine

from recsys.store.campaigns import Occasion, ours, sent_marks

log = structlog.get_logger(__name__)

JournalLine = Mapping[str, Any]


def fsync_quietly(handle: IO[Any]) -> None:
    """Flush and fsync; streams that cannot be synced (pipes, StringIO) are just flushed."""
    handle.flush()
    with contextlib.suppress(OSError, ValueError):
        os.fsync(handle.fileno())


def render_line(line: JournalLine) -> str:
    """One output line: compact JSON, UTF-8 as is, newline-terminated."""
    return json.dumps(line, ensure_ascii=False) + "\n"


def write_lines(out: TextIO, texts: Sequence[str]) -> None:
    """Append lines rendered by `render_line` to `out`, durable before returning."""
    if not texts:
        return
    out.write("".join(texts))
    fsync_quietly(out)


def _pattern(occasion: Occasion, day: date) -> str:
    return f"{occasion}-{day.isoformat()}-*.journal"


class Journal:
    """One job's journal file, exclusively locked until `finish()` or `release()`."""

    def __init__(self, path: Path, handle: TextIO, header: Mapping[str, Any]) -> None:
        self.path = path
        self._handle = handle
        self._header = json.dumps(dict(header)) + "\n"

    @classmethod
    def create(
        cls, directory: Path, occasion: Occasion, day: date, out_path: Path | None
    ) -> Journal:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{occasion}-{day.isoformat()}-{uuid.uuid4().hex}.journal"
        handle = path.open("w", encoding="utf-8")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        header = {
            "journal": 1,
            "occasion": occasion,
            "date": day.isoformat(),
            "out": str(out_path.resolve()) if out_path is not None else None,
        }
        journal = cls(path, handle, header)
        journal.clear()
        return journal

    def stage(self, texts: Sequence[str]) -> None:
        """Replace the staged batch with lines rendered by `render_line` (the job renders
        each line once, for the journal and the output); durable when this returns."""
        self._rewrite(list(texts))

    def clear(self) -> None:
        self._rewrite([])

    def _rewrite(self, body: list[str]) -> None:
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.write(self._header + "".join(body))
        fsync_quietly(self._handle)

    def finish(self) -> None:
        """The job completed: delete the journal and let go of the lock."""
        self._handle.seek(0)
        self._handle.truncate()
        self._handle.flush()
        self.path.unlink(missing_ok=True)
        self._handle.close()

    def release(self) -> None:
        """The job failed: keep the journal for the next run to recover, drop the lock."""
        self._handle.close()


@dataclass(frozen=True, slots=True)
class _Staged:
    out: Path | None
    lines: tuple[JournalLine, ...]


def _read(handle: TextIO) -> _Staged | None:
    handle.seek(0)
    rows: list[dict[str, Any]] = []
    for raw in handle:
        # A kill while staging leaves a torn last line; nothing of it was committed.
        if not raw.endswith("\n"):
            break
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if isinstance(value, dict):
            rows.append(value)
    if not rows or rows[0].get("journal") != 1:
        return None
    out = rows[0].get("out")
    return _Staged(Path(out) if isinstance(out, str) else None, tuple(rows[1:]))


def _code(line: JournalLine) -> str | None:
    voucher = line.get("voucher")
    code = voucher.get("code") if isinstance(voucher, Mapping) else None
    return code if isinstance(code, str) else None


def _exposure_id(line: JournalLine) -> str | None:
    value = line.get("exposure_id")
    return value if isinstance(value, str) else None


def written_customers(path: Path, occasion: Occasion, day: date) -> set[str]:
    """Customers with a complete line for (occasion, day) in an output file.

    A torn last line (the job was killed mid-write) is cut off, so the lines
    emitted after it start on a line of their own.
    """
    found: set[str] = set()
    try:
        handle = path.open("rb+")
    except FileNotFoundError:
        return found
    with handle:
        good_end = 0
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            good_end += len(raw)
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if (
                isinstance(value, dict)
                and value.get("occasion") == occasion
                and value.get("date") == day.isoformat()
                and isinstance(value.get("customer_id"), str)
            ):
                found.add(value["customer_id"])
        handle.seek(0, os.SEEK_END)
        if handle.tell() > good_end:
            handle.truncate(good_end)
            fsync_quietly(handle)
    return found


def recover(
    directory: Path, engine: Engine, occasion: Occasion, day: date, out: TextIO
) -> int:
    """Finish the batches of killed jobs for (occasion, day); returns the lines emitted.

    Journals locked by a live job are left alone. Emitted lines are those whose
    voucher code the contact log holds and that the killed job's output file
    (when it had one) lacks. With stdout as that job's output there is no file
    to check, so its last batch may be emitted twice (at least once, never lost).
    """
    emitted = 0
    if not directory.is_dir():
        return 0
    for path in sorted(directory.glob(_pattern(occasion, day))):
        try:
            handle = path.open("r+", encoding="utf-8")
        except FileNotFoundError:
            continue
        with handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its job is still running and will write its own lines
            try:
                if os.stat(path).st_ino != os.fstat(handle.fileno()).st_ino:
                    continue  # another recovery finished and removed it meanwhile
            except FileNotFoundError:
                continue
            staged = _read(handle)
            lines = staged.lines if staged is not None else ()
            ids = [str(line.get("customer_id")) for line in lines]
            with engine.connect() as conn:
                logged = sent_marks(conn, occasion, day, ids)
            committed = [
                line
                for line in lines
                if ours(_code(line), _exposure_id(line), logged.get(str(line.get("customer_id"))))
            ]
            already: set[str] = set()
            if staged is not None and staged.out is not None and committed:
                already = written_customers(staged.out, occasion, day)
            missing = [line for line in committed if line.get("customer_id") not in already]
            write_lines(out, [render_line(line) for line in missing])
            emitted += len(missing)
            log.info(
                "campaign_journal_recovered",
                journal=path.name,
                staged=len(lines),
                committed=len(committed),
                emitted=len(missing),
            )
            # Empty it before unlinking: a recovery that opened it meanwhile finds nothing.
            handle.seek(0)
            handle.truncate()
            fsync_quietly(handle)
            path.unlink(missing_ok=True)
    return emitted
