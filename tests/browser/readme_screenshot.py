"""The README's picture of the console's customer page, taken by the browser tests' harness.

    python -m tests.browser.readme_screenshot [--home var] [--customer ID] [--out PNG]

Serves the store and model under `--home` (default `$RECSYS_HOME`, or `var` as `make
demo` leaves it) with `recsys serve`, opens the customer page in headless Chromium at a
laptop's width and saves the top of it as a palette PNG (a UI picture needs few colours,
so the file stays small). Without `--customer` it picks the first customer, by id, who
can be contacted and has 6 to 12 orders, preferably with a durable and a consumable
bought: a page with a tier to grow into, a cooldown, a restock and a short timeline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import func, or_, select

from recsys.rules.config import load_rules
from recsys.settings import Settings
from recsys.store.engine import create_store_engine
from recsys.store.tables import customers, items, order_lines, orders
from tests.browser.harness import chromium, screenshot, serve

SIZE = (1200, 1020)
COLOURS = 96


def pick_customer(database_url: str) -> str:
    """The first customer, by id, who may be contacted, has a birthday and 6 to 12 orders,
    preferring one who bought both a durable and a consumable (by the shipped overrides)."""
    overrides = load_rules(None).categories.overrides
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as conn:
            counted = (
                select(orders.c.customer_id, func.count().label("n"))
                .group_by(orders.c.customer_id)
                .subquery()
            )
            base = (
                select(customers.c.customer_id)
                .join(counted, counted.c.customer_id == customers.c.customer_id)
                .where(
                    customers.c.marketing_opt_in.is_(True),
                    customers.c.birthday.is_not(None),
                    counted.c.n.between(6, 12),
                )
                .order_by(customers.c.customer_id)
                .limit(1)
            )
            preferred = base
            for kind in ("durable", "consumable"):
                scopes = [c for c, o in overrides.items() if o.kind == kind]
                bought = (
                    select(orders.c.customer_id)
                    .join(order_lines, order_lines.c.order_id == orders.c.order_id)
                    .join(items, items.c.item_id == order_lines.c.item_id)
                    .where(or_(*(items.c.category.startswith(scope) for scope in scopes)))
                )
                preferred = preferred.where(customers.c.customer_id.in_(bought))
            found = conn.execute(preferred).scalar() or conn.execute(base).scalar()
    finally:
        engine.dispose()
    if found is None:
        raise SystemExit("no customer with 6 to 12 orders; pass --customer")
    return str(found)


def take(home: Path, customer_id: str | None, out: Path) -> Path:
    from PIL import Image

    settings = Settings(home=home)  # type: ignore[call-arg]
    customer_id = customer_id or pick_customer(settings.database_url)
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "serve.log"
        raw = Path(scratch) / "customer.png"
        with serve(home, settings.database_url, log) as base, chromium(SIZE) as driver:
            driver.get(f"{base}/console/customers/{quote(customer_id, safe='')}")
            screenshot(driver, raw, full_page=False)
        with Image.open(raw) as image:
            small = image.convert("RGB").quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT)
            out.parent.mkdir(parents=True, exist_ok=True)
            small.save(out, optimize=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("RECSYS_HOME", "var")))
    parser.add_argument("--customer", default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/console-customer.png"))
    args = parser.parse_args()
    path = take(args.home.resolve(), args.customer, args.out)
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
