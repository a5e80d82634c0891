"""`rules`: time of the rules per list of 200 candidates vs the model's scoring time.

Data: the demo retailer (5000 customers x 600 items, seed 7) ingested into a fresh
SQLite store, als trained with the project defaults (`fit_model`) plus the learned
rule extras, served as a `ServingModel`; 300 customers drawn with seed 7, their data
loaded from the store beforehand (not timed). Per customer, in the same run:

- baseline `recommend(c, 200)`: the model's scoring alone;
- baseline `recommend(c, 200, history)`: the call `recommend_for_customer` makes
  (history = the customer's bought items, so it folds the customer in again);
- candidates: `run_pipeline` on those 200 candidates with a real `RuleContext`, and
  `recommend_for_customer(..., scored=...)`, i.e. everything but the model call, for
  the `newsletter` and `order_confirmation` placements.

Values are mean milliseconds per list (best of 3 passes); ratio = rules / model.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Baseline, Row

CUSTOMERS = 5000
ITEMS = 600
SAMPLE = 300
SEED = 7
POOL = 200
LIMIT = 4
REPEATS = 3


def _per_call_ms(calls: Sequence[Callable[[], object]], repeats: int = REPEATS) -> float:
    """Best-of-`repeats` mean wall time of one call (ms)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for call in calls:
            call()
        best = min(best, time.perf_counter() - started)
    return best / len(calls) * 1000.0


def _setup(tmp: Path) -> dict[str, Any]:
    from bench._data import demo_now, demo_retailer
    from recsys.customer_view import load_customer_data
    from recsys.ingest.loader import ingest_file
    from recsys.ingest.mapping import ColumnMap
    from recsys.offers import ServingModel
    from recsys.rules.config import load_rules
    from recsys.store.catalog import catalog_frame, load_items
    from recsys.store.engine import create_store_engine, migrate
    from recsys.store.purchases import purchase_frame
    from training.rules_learning import learn_rule_extras
    from training.train import fit_model

    demo_dir, lines = demo_retailer(CUSTOMERS, ITEMS, SEED)
    engine = create_store_engine(f"sqlite:///{tmp / 'demo.db'}")
    try:
        migrate(engine)
        for kind, name in (("catalog", "catalog.csv"), ("customers", "customers.csv"),
                           ("transactions", "transactions.csv.gz")):
            ingest_file(engine, kind, demo_dir / name, ColumnMap(),  # type: ignore[arg-type]
                        rejects_dir=tmp / "rejects")
        with engine.connect() as conn:
            purchases = purchase_frame(conn)
            catalog_df = catalog_frame(conn)
            catalog = load_items(conn)
        rules = load_rules(None)
        now = demo_now()
        extras = learn_rule_extras(purchases, catalog_df, rules)
        fitted = fit_model(purchases, catalog_df, model="als", now=now)
        model = ServingModel.from_parts("bench", "als", fitted.recommender, extras)
        known = list(fitted.recommender.data.user_ids.ids)
        rng = np.random.default_rng(SEED)
        sample = [known[i] for i in rng.choice(len(known), size=SAMPLE, replace=False)]
        with engine.connect() as conn:
            data = [load_customer_data(conn, c) for c in sample]
    finally:
        engine.dispose()
    return {"model": model, "rules": rules, "catalog": catalog, "data": data, "now": now,
            "lines": lines}


def run(full: bool) -> list[Row]:
    del full  # one size: the demo retailer the product ships with
    from recsys.offers import recommend_for_customer
    from recsys.rules.candidates import RuleContext, candidates_from_scored
    from recsys.rules.pipeline import run_pipeline

    tmp = Path(tempfile.mkdtemp(prefix="bench-rules-"))
    try:
        env = _setup(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    model, rules, catalog, now = env["model"], env["rules"], env["catalog"], env["now"]
    customers = env["data"]
    rec = model.recommender

    def histories(d: Any) -> list[str]:
        return [p.item_id for p in d.purchases if p.quantity > 0]

    scored = {d.customer_id: rec.recommend(d.customer_id, POOL) for d in customers}
    fillers = model.fillers

    def pipeline_call(d: Any) -> Callable[[], object]:
        candidates = candidates_from_scored(scored[d.customer_id])
        ctx = RuleContext(
            now=now, config=rules, catalog=catalog, purchases=list(d.purchases),
            behaviours=model.behaviours, complements=model.complements,
            contact_history=d.contact_history, placement="newsletter", customer_id=d.customer_id,
        )
        return lambda: run_pipeline(candidates, ctx, limit=LIMIT, fillers=fillers)

    def offer_call(d: Any, placement: str) -> Callable[[], object]:
        return lambda: recommend_for_customer(
            model, rules, catalog, d, placement=placement, limit=LIMIT, now=now,
            scored=scored[d.customer_id],
        )

    def model_call(d: Any, history: Sequence[str] = ()) -> Callable[[], object]:
        return lambda: rec.recommend(d.customer_id, POOL, history=history)

    model_ms = _per_call_ms([model_call(d) for d in customers])
    served_ms = _per_call_ms([model_call(d, histories(d)) for d in customers])
    pipeline_ms = _per_call_ms([pipeline_call(d) for d in customers])
    newsletter_ms = _per_call_ms([offer_call(d, "newsletter") for d in customers])
    confirmation_ms = _per_call_ms([offer_call(d, "order_confirmation") for d in customers])

    n_hist = float(np.mean([len(d.purchases) for d in customers]))
    notes = (
        f"demo {CUSTOMERS:,} x {ITEMS} ({env['lines']:,} lines), seed {SEED}; "
        f"{SAMPLE} customers (mean {n_hist:.0f} purchase lines), {POOL} candidates, "
        f"limit {LIMIT}; best of {REPEATS}"
    )
    plain = Baseline(f"recommend(c, {POOL})", model_ms)
    served = Baseline(f"recommend(c, {POOL}, history)", served_ms)
    cases = [
        ("run_pipeline, 200 candidates (newsletter)", plain, pipeline_ms),
        ("recommend_for_customer minus model (newsletter)", plain, newsletter_ms),
        ("recommend_for_customer minus model (order_confirmation)", plain, confirmation_ms),
        ("served model call vs plain scoring", plain, served_ms),
    ]
    return [
        Row(
            bench="rules",
            case=case,
            baseline=baseline,
            candidate=value,
            ratio=value / baseline.value,
            unit="ms/list",
            ratio_is="candidate / model",
            notes=notes,
        )
        for case, baseline, value in cases
    ] + [
        Row(
            bench="rules",
            case="recommend_for_customer minus model (newsletter) vs served call",
            baseline=served,
            candidate=newsletter_ms,
            ratio=newsletter_ms / served_ms,
            unit="ms/list",
            ratio_is="candidate / model",
            notes=notes,
        )
    ]
