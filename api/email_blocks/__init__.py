"""Product blocks as email-safe HTML, and the example emails that embed them.

Email clients ignore `<style>` sheets and scripts, so the templates use tables and
inline CSS only. Every value is HTML-escaped by Jinja2's autoescape: a product name
such as `<script>` arrives in the mailbox as text.

The same block renders the console's previews and the `/v1/.../email-block`
endpoint, so what a marketer sees is what the mail shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import quote

import httpx
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

EmailKind = Literal["order_confirmation", "anniversary"]

HEADINGS: Mapping[str, str] = {
    "order_confirmation": "Goes well with your order",
    "anniversary": "Picked for your anniversary",
    "birthday": "Picked for your birthday",
    "newsletter": "Picked for you",
}
EMPTY_TEXT = "No products to show."


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates' environment (read-only after creation, so one per process is safe)."""
    return Environment(
        loader=PackageLoader("api.email_blocks", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_block(
    items: Sequence[Mapping[str, Any]],
    *,
    placement: str = "newsletter",
    heading: str | None = None,
    currency: str = "",
) -> Markup:
    """The product block for `items` (the API's item objects: name, price, url, image_url...)."""
    html = environment().get_template("block.html").render(
        items=list(items),
        placement=placement,
        heading=HEADINGS.get(placement) if heading is None else heading,
        currency=currency,
        empty_text=EMPTY_TEXT,
    )
    return Markup(html)


def render_email(kind: EmailKind, block: Markup, **context: Any) -> str:
    """A whole example email of `kind` around an already rendered `block`.

    order_confirmation needs `order_id`; anniversary needs `years`, `tier`, `voucher`
    (a mapping with code, percent, valid_until, or None) and `occasion`. Both take
    `shop_name`.
    """
    defaults: dict[str, Any] = {"shop_name": "Your shop", "occasion": "anniversary"}
    return environment().get_template(f"{kind}.html").render(
        **{**defaults, **context}, block=block
    )


def email_from_api(
    client: httpx.Client,
    kind: EmailKind,
    customer_id: str,
    *,
    api_key: str | None = None,
    limit: int = 4,
    **context: Any,
) -> str:
    """The example integration: call the recommendation endpoint, render the email.

    `client` has the service as its base URL. Raises `httpx.HTTPStatusError` when the
    service refuses (401 without a valid key, 422 for a bad id).
    """
    headers = {"X-API-Key": api_key} if api_key else {}
    response = client.get(
        f"/v1/customers/{quote(customer_id, safe='')}/recommendations",
        params={"placement": kind, "limit": limit},
        headers=headers,
    )
    response.raise_for_status()
    body = response.json()
    block = render_block(body["items"], placement=kind)
    return render_email(kind, block, **context)
