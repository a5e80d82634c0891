"""Tests for the bundled demo retailer generator (recsys/data/demo.py)."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from recsys.data.demo import (
    CATALOG_COLUMNS,
    CATEGORIES,
    CATEGORY_BY_PATH,
    CUSTOMER_COLUMNS,
    TRANSACTION_COLUMNS,
    CategorySpec,
    DemoSummary,
    categories_of_kind,
    generate_demo,
)

# Small enough to run in well under a second, large enough for stable shares.
CUSTOMERS = 2000
ITEMS = 120
END = date(2026, 11, 20)


class Demo:
    """The three files of one generated demo, parsed."""

    def __init__(self, summary: DemoSummary) -> None:
        self.summary = summary
        self.catalog = pl.read_csv(summary.files["catalog"])
        self.customers = pl.read_csv(
            summary.files["customers"],
            schema_overrides={"joined_at": pl.Date, "birthday": pl.Date},
        )
        with gzip.open(summary.files["transactions"]) as raw:
            self.transactions = pl.read_csv(
                raw.read(), schema_overrides={"purchased_at": pl.Datetime("us")}
            )

    def lines(self) -> pl.DataFrame:
        """Transactions with the item's category, kind and list price."""
        kinds = pl.DataFrame(
            {"category": [s.path for s in CATEGORIES], "kind": [s.kind for s in CATEGORIES]}
        )
        return self.transactions.join(
            self.catalog.select("item_id", "category", "price"), on="item_id"
        ).join(kinds, on="category")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    out = tmp_path_factory.mktemp("demo")
    return Demo(generate_demo(out, customers=CUSTOMERS, items=ITEMS, seed=3, end=END))


def header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as text:
        return text.readline().rstrip("\n").split(",")


def test_same_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    first = generate_demo(tmp_path / "a", customers=300, items=60, seed=11)
    second = generate_demo(tmp_path / "b", customers=300, items=60, seed=11)
    other = generate_demo(tmp_path / "c", customers=300, items=60, seed=12)
    for name, path in first.files.items():
        assert path.read_bytes() == second.files[name].read_bytes(), name
    assert first.files["transactions"].read_bytes() != other.files["transactions"].read_bytes()
    assert not list((tmp_path / "a").glob("*.partial"))


def test_files_have_exactly_the_canonical_columns(demo: Demo) -> None:
    files = demo.summary.files
    assert header(files["catalog"]) == list(CATALOG_COLUMNS)
    assert header(files["customers"]) == list(CUSTOMER_COLUMNS)
    assert header(files["transactions"]) == list(TRANSACTION_COLUMNS)
    assert files["transactions"].name == "transactions.csv.gz"


def test_summary_counts_match_the_files(demo: Demo) -> None:
    tx = demo.transactions
    assert demo.summary.customers == demo.customers.height == CUSTOMERS
    assert demo.summary.items == demo.catalog.height == ITEMS
    assert demo.summary.lines == tx.height
    assert demo.summary.orders == tx["order_id"].n_unique()
    # ~25 lines per customer keeps the default 5000 customers around 125k lines.
    assert 15 * CUSTOMERS < tx.height < 40 * CUSTOMERS


def test_ids_have_the_documented_shapes(demo: Demo) -> None:
    assert demo.catalog["item_id"].str.contains(r"^I\d{5}$").all()
    assert demo.customers["customer_id"].str.contains(r"^C\d{6}$").all()
    assert demo.transactions["order_id"].str.contains(r"^O\d{7,}$").all()
    assert demo.catalog["item_id"].is_unique().all()
    assert demo.customers["customer_id"].is_unique().all()


def test_every_category_and_kind_is_present_even_with_few_items(tmp_path: Path) -> None:
    small = Demo(generate_demo(tmp_path, customers=200, items=len(CATEGORIES) * 2, seed=5))
    assert set(small.catalog["category"]) == {spec.path for spec in CATEGORIES}
    kinds = set(small.lines()["kind"])
    assert kinds == {"durable", "consumable", "complement", "regular"}
    for kind in ("durable", "consumable", "complement", "regular"):
        assert categories_of_kind(kind)


def test_too_few_items_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one per category"):
        generate_demo(tmp_path, customers=10, items=len(CATEGORIES) - 1)


def test_category_specs_are_consistent() -> None:
    for spec in CATEGORIES:
        assert spec.path == spec.path.lower() and spec.path.count("/") == 1
        assert (spec.interval_days is not None) == (spec.kind == "consumable")
        for parent in spec.complement_of:
            assert CATEGORY_BY_PATH[parent].kind == "durable"
        assert 0 < spec.price_range[0] < spec.price_range[1]


def test_catalog_prices_costs_stock_and_links(demo: Demo) -> None:
    cat = demo.catalog
    assert (cat["cost"] < cat["price"]).all()
    assert (cat["price"] > 0).all()
    out_of_stock = (~cat["in_stock"]).sum()
    assert 1 <= out_of_stock <= 0.1 * ITEMS
    assert (cat["url"] == "https://shop.example.com/p/" + cat["item_id"]).all()
    assert (cat["image_url"] == "https://shop.example.com/img/" + cat["item_id"] + ".jpg").all()
    by_cat = dict(zip(cat["category"], cat["price"], strict=False))
    assert by_cat["electronics/tv"] > 200
    cables = cat.filter(pl.col("category") == "electronics/hdmi-cables")["price"]
    assert (cables < 20).all()
    tv_names = cat.filter(pl.col("category") == "electronics/tv")["name"]
    assert tv_names.str.contains(r'^TV \d\d" ').all()


def test_customers_include_the_awkward_cases(demo: Demo) -> None:
    cus = demo.customers
    joined = cus["joined_at"].drop_nulls()
    feb29 = joined.filter((joined.dt.month() == 2) & (joined.dt.day() == 29))
    assert feb29.len() >= 3
    assert (feb29 == date(2024, 2, 29)).all()
    born = cus["birthday"].drop_nulls()
    assert ((born.dt.month() == 2) & (born.dt.day() == 29)).sum() >= 3
    assert 0 < cus["joined_at"].null_count() < 0.1 * CUSTOMERS
    assert 0 < cus["email"].null_count() < 0.05 * CUSTOMERS
    assert 0 < cus["birthday"].null_count() < 0.3 * CUSTOMERS
    opt_out = (~cus["marketing_opt_in"]).sum() / CUSTOMERS
    assert 0.05 < opt_out < 0.15
    emails = cus.drop_nulls("email")
    assert (emails["email"] == emails["customer_id"].str.to_lowercase() + "@example.com").all()
    assert joined.max() <= END  # type: ignore[operator]


def test_transactions_reference_known_items_and_customers(demo: Demo) -> None:
    tx = demo.transactions
    assert set(tx["item_id"]) <= set(demo.catalog["item_id"])
    assert set(tx["customer_id"]) <= set(demo.customers["customer_id"])


def test_orders_have_one_customer_and_one_time(demo: Demo) -> None:
    per_order = demo.transactions.group_by("order_id").agg(
        pl.col("customer_id").n_unique().alias("customers"),
        pl.col("purchased_at").n_unique().alias("times"),
    )
    assert (per_order["customers"] == 1).all()
    assert (per_order["times"] == 1).all()


def test_purchases_fall_between_joining_and_end(demo: Demo) -> None:
    first = demo.transactions.group_by("customer_id").agg(
        pl.col("purchased_at").min().dt.date().alias("first")
    )
    known = first.join(demo.customers, on="customer_id").drop_nulls("joined_at")
    assert (known["first"] >= known["joined_at"]).all()
    assert demo.transactions["purchased_at"].max().date() <= END  # type: ignore[union-attr]


def test_unit_price_is_near_list_price(demo: Demo) -> None:
    ratio = demo.lines().select(pl.col("unit_price") / pl.col("price"))["unit_price"]
    assert ratio.min() >= 0.65  # type: ignore[operator]
    assert ratio.max() <= 1.0 + 1e-9  # type: ignore[operator]
    assert ratio.median() == pytest.approx(1.0)


def test_returns_are_later_lines_of_their_own_order(demo: Demo) -> None:
    tx = demo.transactions
    returns = tx.filter(pl.col("quantity") < 0)
    assert returns.height > 0
    assert returns.height < 0.05 * tx.height
    # A return order holds only returns, and the customer bought the item earlier.
    return_orders = set(returns["order_id"])
    assert (tx.filter(pl.col("order_id").is_in(return_orders))["quantity"] < 0).all()
    bought = (
        tx.filter(pl.col("quantity") > 0)
        .group_by("customer_id", "item_id")
        .agg(pl.col("purchased_at").min().alias("bought_at"))
    )
    matched = returns.join(bought, on=["customer_id", "item_id"], how="left")
    assert matched["bought_at"].null_count() == 0
    assert (matched["purchased_at"] > matched["bought_at"]).all()


def test_some_lines_are_scanned_twice(demo: Demo) -> None:
    tx = demo.transactions
    keys = tx.select("order_id", "item_id")
    duplicated = tx.height - keys.n_unique()
    assert 0 < duplicated < 0.02 * tx.height


def test_complements_follow_most_durables(demo: Demo) -> None:
    lines = demo.lines().filter(pl.col("quantity") > 0)
    for durable in ("electronics/tv", "sports/bicycles", "electronics/laptops"):
        complements = [s.path for s in CATEGORIES if durable in s.complement_of]
        bought = lines.filter(
            pl.col("category") == durable, pl.col("purchased_at").dt.date() <= date(2026, 11, 1)
        ).group_by("customer_id").agg(pl.col("purchased_at").min().alias("t0"))
        followed = (
            bought.join(
                lines.filter(pl.col("category").is_in(complements)).select(
                    "customer_id", "purchased_at"
                ),
                on="customer_id",
            )
            .filter(
                (pl.col("purchased_at") - pl.col("t0")).dt.total_days().is_between(0, 10)
            )["customer_id"]
            .n_unique()
        )
        assert bought.height >= 20, durable
        assert followed / bought.height > 0.7, durable


def test_durables_are_rarely_rebought(demo: Demo) -> None:
    per_customer = (
        demo.lines()
        .filter(pl.col("kind") == "durable", pl.col("quantity") > 0)
        .group_by("customer_id", "category")
        .agg(pl.col("order_id").n_unique().alias("orders"))
    )
    assert per_customer.height > 100
    assert (per_customer["orders"] > 1).mean() < 0.05  # type: ignore[operator]


@pytest.mark.parametrize("spec", categories_of_kind("consumable"), ids=lambda s: s.path)
def test_consumables_are_rebought_on_their_cycle(demo: Demo, spec: CategorySpec) -> None:
    assert spec.interval_days is not None
    gaps = (
        demo.lines()
        .filter(pl.col("category") == spec.path, pl.col("quantity") > 0)
        .unique(["customer_id", "order_id"])
        .sort("customer_id", "purchased_at")
        .select(
            (pl.col("purchased_at").diff().over("customer_id").dt.total_seconds() / 86_400)
            .alias("gap")
        )["gap"]
        .drop_nulls()
    )
    assert gaps.len() > 100
    median = gaps.median()
    assert isinstance(median, float)
    assert median == pytest.approx(spec.interval_days, rel=0.2)


def test_item_popularity_is_skewed(demo: Demo) -> None:
    counts = demo.transactions.group_by("item_id").len().sort("len", descending=True)["len"]
    top_decile = int(counts.head(max(1, counts.len() // 10)).sum())
    assert top_decile / int(counts.sum()) > 0.25


def test_due_date_skews_join_days(tmp_path: Path) -> None:
    due = date(2026, 11, 22)
    skewed = Demo(
        generate_demo(tmp_path, customers=1000, items=60, due_date=due, due_share=0.3, end=END)
    )
    joined = skewed.customers["joined_at"].drop_nulls()
    on_day = joined.filter((joined.dt.month() == due.month) & (joined.dt.day() == due.day))
    assert 0.25 * 1000 < on_day.len() < 0.35 * 1000
    assert (on_day.dt.year() < due.year).all()
    assert set(on_day.dt.year()) == {2024, 2025}
    assert on_day.max() <= END  # type: ignore[operator]


def test_progress_reports_every_customer(tmp_path: Path) -> None:
    done: list[int] = []
    generate_demo(tmp_path, customers=150, items=60, progress=done.append)
    assert sum(done) == 150
