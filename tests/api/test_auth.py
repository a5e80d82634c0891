"""API keys: 401 before anything else on every `/v1` route, and declared in OpenAPI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from recsys.settings import Settings
from recsys.store.tables import orders
from tests.api.conftest import make_client

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "missing or invalid API key"}}
KEYS = [SecretStr("k-one"), SecretStr("k-two")]


@pytest.fixture
def keyed(served: tuple[Engine, Settings]) -> TestClient:
    engine, settings = served
    return make_client(engine, settings.model_copy(update={"api_keys": KEYS}))


def _v1_operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return [
        (method.upper(), path.replace("{customer_id}", "C1").replace("{item_id}", "I1"))
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
    ]


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "wrong"}, {"X-API-Key": "k-one "}]
)
def test_every_v1_route_answers_401_before_reading_the_request(
    keyed: TestClient, served: tuple[Engine, Settings], headers: dict[str, str]
) -> None:
    engine, _ = served
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(orders)).scalar_one()
    with keyed as client:
        operations = _v1_operations(client)
        assert len(operations) >= 5
        # Non-JSON bodies, bad query values, unknown paths and methods: the same 401.
        probes = [
            *operations,
            ("GET", "/v1/nowhere"),
            ("DELETE", "/v1/events/orders"),
            ("GET", "/v1/customers/C1/recommendations?limit=zero&placement=nope"),
        ]
        for method, url in probes:
            response = client.request(
                method,
                url,
                content=b"{not json",
                headers={**headers, "content-type": "application/json"},
            )
            assert response.status_code == 401, (method, url, response.text)
            assert response.json() == UNAUTHORIZED
            assert "allow" not in response.headers
        # Open routes stay open.
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == before


def test_a_valid_key_passes_and_bad_input_is_then_explained(keyed: TestClient) -> None:
    with keyed as client:
        ok = client.get("/v1/customers/anyone/recommendations", headers={"X-API-Key": "k-two"})
        assert ok.status_code == 200
        bad = client.post(
            "/v1/events/orders",
            content=b"{not json",
            headers={"X-API-Key": "k-one", "content-type": "application/json"},
        )
        assert bad.status_code == 422


def test_the_key_is_a_declared_security_scheme(keyed: TestClient, client: TestClient) -> None:
    with keyed as secured:
        document = secured.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["ApiKey"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header" and scheme["name"] == "X-API-Key"
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                assert operation["security"] == [{"ApiKey": []}]
            else:
                assert "security" not in operation
    # Without keys configured the scheme is listed as optional.
    open_ops = client.get("/openapi.json").json()["paths"]["/v1/events/orders"]["post"]
    assert {} in open_ops["security"]
