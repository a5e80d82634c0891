"""A forked drafting worker dies with its job, so a killed job's locks are free at once."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from recsys.campaign.drafting import _die_with_parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")


def _lock_free_within(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)


def test_a_worker_of_a_killed_job_lets_go_of_the_jobs_file_lock(tmp_path: Path) -> None:
    # The job (here `job`) holds an flock on its output; its worker is forked after, so
    # it shares that lock. Killing the job with SIGKILL must not leave the file locked.
    locked = tmp_path / "out.jsonl"
    ready_r, ready_w = os.pipe()
    job = os.fork()
    if job == 0:  # pragma: no cover - the job process
        os.close(ready_r)
        handle = locked.open("a")
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        if os.fork() == 0:  # the worker
            ok = _die_with_parent()
            os.write(ready_w, b"1" if ok else b"0")
            time.sleep(60)
            os._exit(0)
        time.sleep(60)
        os._exit(0)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1", "prctl(PR_SET_PDEATHSIG) was refused"
    os.close(ready_r)
    os.kill(job, signal.SIGKILL)
    os.waitpid(job, 0)
    # Without the kernel's help the worker would keep the lock for its whole minute.
    assert _lock_free_within(locked, 5.0)
