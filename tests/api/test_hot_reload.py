"""Running services follow `recsys train` / `recsys models use` and refuse broken artifacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from recsys.settings import Settings
from tests.api.conftest import make_client, train
from training.artifacts import current_version, use_version


def test_new_current_model_is_served_without_restart(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    first = current_version(settings.models_dir)
    with make_client(engine, settings) as client:
        assert client.get("/v1/customers/x/recommendations").json()["model_version"] == first
        second = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 21))
        assert client.get("/v1/customers/x/recommendations").json()["model_version"] == second
        use_version(settings.models_dir, str(first))  # rollback
        assert client.get("/v1/customers/x/recommendations").json()["model_version"] == first


def test_broken_artifact_is_refused_and_the_old_model_keeps_serving(
    served: tuple[Engine, Settings],
) -> None:
    engine, settings = served
    first = current_version(settings.models_dir)
    with make_client(engine, settings) as client:
        assert client.get("/readyz").json()["model_version"] == first
        broken = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 22))
        # Corrupt the new version after it became current, as a bad disk or copy would.
        arrays = settings.models_dir / broken / "arrays.npz"
        arrays.write_bytes(b"not an npz file")
        body = client.get("/v1/customers/x/recommendations").json()
        assert body["model_version"] == first
        assert client.get("/readyz").status_code == 200


def test_background_reload_keeps_answering_while_the_new_model_loads(
    served: tuple[Engine, Settings],
) -> None:
    import time

    from api.app import create_app
    from api.model_holder import ModelHolder
    from tests.api.conftest import TestClient

    engine, settings = served
    first = current_version(settings.models_dir)
    holder = ModelHolder(settings.models_dir, check_seconds=0.0, background=True)
    with TestClient(create_app(settings, engine=engine, model_holder=holder)) as client:
        second = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 21))
        seen = set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            response = client.get("/v1/customers/x/recommendations")
            assert response.status_code == 200
            seen.add(response.json()["model_version"])
            if second in seen:
                break
            time.sleep(0.05)
        assert second in seen and seen <= {first, second}
