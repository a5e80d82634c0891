"""`?exclude=` and `?category=` on the recommendation endpoints; a typo in the query is a 422."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from api.app import create_app
from recsys.rules.hierarchy import is_under
from recsys.settings import Settings
from recsys.store.tables import exposures, orders
from tests.api.test_api import _a_customer


def _ids(body: dict[str, object]) -> list[str]:
    return [item["item_id"] for item in body["items"]]  # type: ignore[attr-defined,index]


def test_exclude_drops_the_items_and_the_list_is_still_full(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    customer = _a_customer(served[0])
    url = f"/v1/customers/{customer}/recommendations"
    plain = _ids(client.get(url, params={"limit": 6}).json())
    assert len(plain) == 6
    excluded = client.get(
        url, params=[("limit", "6"), ("exclude", f"{plain[0]},{plain[2]}"), ("exclude", plain[4])]
    ).json()
    assert len(_ids(excluded)) == 6
    assert not {plain[0], plain[2], plain[4]} & set(_ids(excluded))
    # The rest keeps its order; unknown ids are harmless.
    kept = [i for i in plain if i not in {plain[0], plain[2], plain[4]}]
    assert _ids(excluded)[: len(kept)] == kept
    for harmless in ("no-such-item", ",,", "x" * 300):
        assert _ids(client.get(url, params={"limit": 6, "exclude": harmless}).json()) == plain


def test_category_keeps_to_the_category_and_explain_says_why(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    customer = _a_customer(served[0])
    url = f"/v1/customers/{customer}/recommendations"
    plain = client.get(url, params={"limit": 8}).json()["items"]
    top = str(plain[0]["category"]).split("/")[0]
    assert any(not is_under(str(i["category"]), top) for i in plain)  # the filter has work
    body = client.get(url, params={"limit": 4, "category": top, "explain": "true"}).json()
    assert body["items"] and all(is_under(i["category"], top) for i in body["items"])
    reasons = {r["reason"] for r in body["removed"]}
    assert "not_in_category" in reasons
    complements = client.get(
        f"/v1/items/{plain[0]['item_id']}/complements", params={"category": top}
    ).json()
    assert all(is_under(i["category"], top) for i in complements["items"])
    basket = client.post(
        "/v1/recommendations/cross-sell", params={"category": top, "exclude": plain[1]["item_id"]},
        json={"items": [plain[0]["item_id"]]},
    ).json()
    assert all(is_under(i["category"], top) for i in basket["items"])
    assert plain[1]["item_id"] not in _ids(basket)
    block = client.get(f"/v1/customers/{customer}/email-block",
                       params={"exclude": plain[0]["item_id"]})
    assert block.status_code == 200 and plain[0]["item_id"] not in block.text


BAD_FILTERS: list[dict[str, str | list[str]]] = [
    {"category": "a//b"},
    {"category": " electronics"},
    {"category": "books/"},
    {"category": [f"c{n}" for n in range(21)]},
    {"exclude": "ok,bad\x01id"},
]


def test_bad_filters_are_a_422_naming_the_parameter(client: TestClient) -> None:
    for params in BAD_FILTERS:
        response = client.get("/v1/customers/C1/recommendations", params=params)
        assert response.status_code == 422, params
        assert next(iter(params)) in response.json()["error"]["message"]


@pytest.fixture
def bare_client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    """The app on an empty store without a model: the query is checked before anything."""
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(False))
    with TestClient(create_app(settings, engine=engine)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/customers/C1/recommendations?limt=3"),
        ("GET", "/v1/customers/C1/recommendations?limit=3&exlude=I1"),
        ("GET", "/v1/customers/C1/email-block?placment=newsletter"),
        ("GET", "/v1/customers/C1/loyalty?verbose=1"),
        ("GET", "/v1/items/I00001/complements?categroy=books"),
        ("POST", "/v1/recommendations/cross-sell?limit=3"),  # the limit is in the body
        ("POST", "/v1/events/orders?dry_run=1"),
        ("POST", "/v1/events/clicks?x=1"),
    ],
)
def test_unknown_query_parameters_are_a_422_and_change_nothing(
    bare_client: TestClient, engine: Engine, method: str, url: str
) -> None:
    client = bare_client

    def counts() -> tuple[int, int]:
        with engine.connect() as conn:
            return (
                int(conn.execute(select(func.count()).select_from(orders)).scalar_one()),
                int(conn.execute(select(func.count()).select_from(exposures)).scalar_one()),
            )

    before = counts()
    body = {
        "order_id": "Q-1", "customer_id": "C1",
        "purchased_at": datetime.now(UTC).isoformat(), "items": [{"item_id": "I00001"}],
    } if url.startswith("/v1/events/orders") else {"items": ["I00001"]}
    response = client.request(method, url, json=body if method == "POST" else None)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "unknown query parameter" in message and url.split("?")[1].split("=")[0] in message
    client.app.state.exposures.flush()  # type: ignore[attr-defined]
    assert counts() == before
