"""An `as_of` at the far ends of the calendar is a 422 naming the range, never a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from recsys.settings import Settings
from recsys.store.tables import items

from .conftest import make_client, top_buyer


@pytest.mark.parametrize(
    "as_of", ["0001-01-01T00:00:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59"]
)
def test_as_of_at_the_calendar_ends_is_refused(
    served: tuple[Engine, Settings], as_of: str
) -> None:
    engine, settings = served
    customer = top_buyer(engine)
    with engine.connect() as conn:
        item = str(conn.execute(select(items.c.item_id).limit(1)).scalar())
    with make_client(engine, settings) as client:
        responses = [
            client.get(f"/v1/customers/{customer}/recommendations", params={"as_of": as_of}),
            client.get(f"/v1/items/{item}/complements", params={"as_of": as_of}),
            client.post(
                "/v1/recommendations/cross-sell",
                params={"as_of": as_of},
                json={"customer_id": customer, "items": [item]},
            ),
        ]
        for response in responses:
            assert response.status_code == 422, (response.request.url, response.text)
            assert "as_of" in response.json()["error"]["message"]
            assert "1900 to 2999" in response.json()["error"]["message"]


def test_as_of_inside_the_range_is_answered(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    customer = top_buyer(engine)
    with make_client(engine, settings) as client:
        for as_of in ("1900-01-01T00:00:00", "2999-12-31T23:59:59"):
            response = client.get(
                f"/v1/customers/{customer}/recommendations", params={"as_of": as_of}
            )
            assert response.status_code == 200, response.text
