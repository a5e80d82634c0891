"""`recsys serve --workers 2` as a user runs it: one scrape counts every worker's requests,
a worker that dies is replaced, and an artifact cut short under the service is survived."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import Engine

from recsys.settings import Settings
from tests.api.conftest import stop_server, train

pytestmark = pytest.mark.slow

ROUTE = "/v1/customers/{customer_id}/recommendations"
Service = tuple[str, Settings, "subprocess.Popen[bytes]", Path]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited"
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the service never became ready")


@pytest.fixture
def service(served: tuple[Engine, Settings], tmp_path: Path) -> Iterator[Service]:
    engine, settings = served
    # A second, newer version: the one the fault test cuts short.
    train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 21))
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "RECSYS_HOME": str(settings.home),
        "RECSYS_DATABASE_URL": settings.database_url,
        "RECSYS_LOG_FORMAT": "json",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "recsys", "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base, settings, proc, log
    finally:
        stop_server(proc)


def _fresh(base: str, path: str) -> httpx.Response:
    # One connection per request, so the kernel hands requests to both workers.
    with httpx.Client(base_url=base, timeout=10) as client:
        return client.get(path, headers={"connection": "close"})


def _count(metrics: str) -> float:
    pattern = (
        r'^recsys_http_requests_total\{method="GET",route="' + re.escape(ROUTE)
        + r'",status="200"\} (\S+)$'
    )
    return sum(float(m) for m in re.findall(pattern, metrics, flags=re.MULTILINE))


def _workers(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    # The supervisor's children less multiprocessing's resource tracker.
    found = []
    for child in psutil.Process(proc.pid).children():
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_one_scrape_counts_every_workers_requests(service: Service) -> None:
    base, _, proc, _ = service
    assert len(_workers(proc)) == 2
    for _ in range(60):
        assert _fresh(base, "/v1/customers/x/recommendations").status_code == 200
    scrapes = [_count(_fresh(base, "/metrics").text) for _ in range(6)]
    assert scrapes == [60.0] * 6


def test_a_dying_worker_is_replaced_and_its_counts_kept(service: Service) -> None:
    base, _, proc, log = service
    for _ in range(20):
        assert _fresh(base, "/v1/customers/x/recommendations").status_code == 200
    victim = _workers(proc)[0]
    victim.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = {p.pid for p in _workers(proc)}
        if len(pids) == 2 and victim.pid not in pids:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the dead worker was not replaced")
    assert f"Child process [{victim.pid}] died" in log.read_text()
    _wait_ready(base, proc)
    assert _count(_fresh(base, "/metrics").text) >= 20.0


def test_an_artifact_cut_short_in_place_is_survived(service: Service) -> None:
    from training.artifacts import current_version, list_versions

    base, settings, proc, _ = service
    newest = str(current_version(settings.models_dir))
    older = [v.version for v in list_versions(settings.models_dir) if v.version != newest][-1]
    assert _fresh(base, "/readyz").json()["model_version"] == newest
    arrays = settings.models_dir / newest / "arrays.npz"
    arrays.chmod(0o644)
    os.truncate(arrays, 1024)
    deadline = time.monotonic() + 60
    answered: set[str] = set()
    while time.monotonic() < deadline:
        try:
            response = _fresh(base, "/v1/customers/x/recommendations")
        except httpx.HTTPError:
            time.sleep(0.2)  # a worker that met the cut pages died; the supervisor replaces it
            continue
        assert response.status_code in (200, 503), response.text
        if response.status_code == 200:
            answered.add(response.json()["model_version"])
            if older in answered:
                break
        time.sleep(0.1)
    assert older in answered
    assert proc.poll() is None
    ready = _fresh(base, "/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"] == older
