"""HTTP details clients rely on: `Allow` on a 405, a declared 400 for an unreadable body,
and `/docs` / `/redoc` that load nothing from outside the service."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from api.app import create_app
from recsys.settings import Settings
from recsys.store.tables import order_lines, orders

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _client(engine: Engine, home: Path, keys: list[str] | None = None) -> TestClient:
    settings = Settings(
        home=home,
        database_url=engine.url.render_as_string(False),
        api_keys=[SecretStr(k) for k in keys or []],
    )
    return TestClient(create_app(settings, engine=engine))


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The app on an empty store without a model: nothing here needs one."""
    with _client(engine, tmp_path) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", "/v1/customers/C1/recommendations", "GET"),
        ("POST", "/v1/customers/C1/loyalty", "GET"),
        ("GET", "/v1/recommendations/cross-sell", "POST"),
        ("PUT", "/v1/events/orders", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_a_405_names_the_allowed_methods(
    client: TestClient, method: str, url: str, allowed: str
) -> None:
    response = client.request(method, url)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {allowed}
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_with_keys_the_405_comes_only_after_the_key(engine: Engine, tmp_path: Path) -> None:
    with _client(engine, tmp_path, keys=["k1"]) as keyed:
        anonymous = keyed.delete("/v1/customers/C1/recommendations")
        assert anonymous.status_code == 401 and "allow" not in anonymous.headers
        known = keyed.delete("/v1/customers/C1/recommendations", headers={"X-API-Key": "k1"})
        assert known.status_code == 405 and known.headers["allow"] == "GET"


@pytest.mark.parametrize(
    "url", ["/v1/events/orders", "/v1/events/clicks", "/v1/recommendations/cross-sell"]
)
def test_a_body_that_is_not_utf8_is_a_declared_400_and_records_nothing(
    client: TestClient, engine: Engine, url: str
) -> None:
    before = _stored(engine)
    body = b'{"order_id": "\xff\xfe", "customer_id": "C1", "items": ["I1"]}'
    response = client.post(url, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unreadable_body" and "UTF-8" in error["message"]
    assert _stored(engine) == before
    # Every operation that takes a body says it can answer 400.
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert "400" in operation["responses"], (method, path)


def _stored(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            int(conn.execute(select(func.count()).select_from(orders)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(order_lines)).scalar_one()),
        )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_load_only_assets_the_service_serves(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    # No address outside the service: no scheme, no protocol-relative URL.
    assert "://" not in html.text and not re.search(r"""["']//""", html.text)
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    assert any(a.endswith(".js") for a in assets)
    for asset in assets:
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert fetched.content, asset
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_the_bundled_swagger_ui_reads_openapi_3_1(client: TestClient) -> None:
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    # Swagger UI renders OpenAPI 3.1 (FastAPI's documents) from version 5 on.
    major = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle.text)
    assert major is not None and int(major.group(1)) >= 5


def test_an_order_body_that_is_fine_still_records(client: TestClient, engine: Engine) -> None:
    """The 400 is about bytes only: the same order as valid UTF-8 reaches validation."""
    order = {
        "order_id": "U-1", "customer_id": "C1", "purchased_at": datetime.now(UTC).isoformat(),
        "items": [{"item_id": "I1"}],
    }
    response = client.post("/v1/events/orders", json=order)
    # The store is empty, so the item is unknown: a 422 naming it, not a 400.
    assert response.status_code == 422 and "I1" in response.json()["error"]["message"]
