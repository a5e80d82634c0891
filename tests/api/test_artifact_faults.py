"""The service survives its artifacts: read-only versions, fallback at start, changed files."""

from __future__ import annotations

import os
import stat
from datetime import datetime

import structlog
from sqlalchemy import Engine

from recsys.settings import Settings
from tests.api.conftest import make_client, train
from training.artifacts import current_version


def test_saved_versions_are_read_only(served: tuple[Engine, Settings]) -> None:
    _, settings = served
    folder = settings.models_dir / str(current_version(settings.models_dir))
    files = list(folder.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o444, path.name


def _corrupt(settings: Settings, version: str) -> None:
    arrays = settings.models_dir / version / "arrays.npz"
    arrays.chmod(0o644)
    os.truncate(arrays, arrays.stat().st_size // 2)


def test_a_corrupt_current_version_falls_back_to_the_newest_valid_one_at_start(
    served: tuple[Engine, Settings],
) -> None:
    engine, settings = served
    older = str(current_version(settings.models_dir))
    newer = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 21))
    broken = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 22))
    _corrupt(settings, broken)
    with structlog.testing.capture_logs() as logs, make_client(engine, settings) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["model_version"] == newer
        body = client.get("/v1/customers/x/recommendations").json()
        assert body["model_version"] == newer
    fallback = [e for e in logs if e["event"] == "model_fallback"]
    assert fallback and fallback[0]["version"] == newer and fallback[0]["current"] == broken
    assert current_version(settings.models_dir) == broken  # the pointer is the operator's
    assert older != newer


def test_files_changed_under_the_served_model_are_noticed_before_a_request_meets_them(
    served: tuple[Engine, Settings],
) -> None:
    engine, settings = served
    older = str(current_version(settings.models_dir))
    served_version = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 21))
    with structlog.testing.capture_logs() as logs, make_client(engine, settings) as client:
        assert client.get("/readyz").json()["model_version"] == served_version
        _corrupt(settings, served_version)  # in place, under the memory map
        response = client.get("/v1/customers/x/recommendations")
        assert response.status_code == 200 and response.json()["model_version"] == older
        assert client.get("/readyz").json()["model_version"] == older
    events = [e["event"] for e in logs]
    assert "model_files_changed" in events and "model_fallback" in events


def test_readyz_fails_while_the_served_files_differ_from_the_loaded_ones(
    served: tuple[Engine, Settings],
) -> None:
    from api.app import create_app
    from api.model_holder import ModelHolder
    from tests.api.conftest import TestClient

    engine, settings = served
    version = str(current_version(settings.models_dir))
    # No pointer check for an hour: only /readyz's own look at the files can tell.
    holder = ModelHolder(settings.models_dir, check_seconds=3600.0)
    holder.refresh()
    with TestClient(create_app(settings, engine=engine, model_holder=holder)) as client:
        assert client.get("/readyz").status_code == 200
        meta = settings.models_dir / version / "meta.json"
        meta.chmod(0o644)
        meta.write_text(meta.read_text() + " ")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert "changed on disk" in response.json()["error"]["message"]
