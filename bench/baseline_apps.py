"""The yardsticks `bench.api` serves beside `recsys serve`, as uvicorn factories.

`raw_topk_app`: a minimal FastAPI app that loads the factors of the model `RECSYS_HOME`
serves and, per request, scores the customer's row against every item
(`item_factors @ user_factors[row]`), takes the top 10 with `argpartition` and returns
4 item ids: what a hand-written top-k service would do, with no store, no rules.
`bare_app`: a FastAPI endpoint that returns `{}`, the framework's floor.

Run with `uvicorn --factory bench.baseline_apps:raw_topk_app --workers 2` (the
environment names the home); the benchmark does that in a subprocess.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException

TOP = 10
SHOWN = 4


def _factors(home: Path) -> tuple[dict[str, int], np.ndarray, np.ndarray, list[str]]:
    from training.artifacts import load_model

    loaded = load_model(home / "models")
    rec: Any = loaded.recommender
    als = getattr(rec, "als", None) or rec.model
    rows = {customer: i for i, customer in enumerate(rec.data.user_ids.ids)}
    users = np.ascontiguousarray(np.asarray(als.user_factors), dtype=np.float32)
    items = np.ascontiguousarray(np.asarray(als.item_factors), dtype=np.float32)
    return rows, users, items, list(rec.data.item_ids.ids)


def raw_topk_app() -> FastAPI:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # as `recsys serve` does: one BLAS thread per worker
    rows, users, items, item_ids = _factors(Path(os.environ["RECSYS_HOME"]))
    app = FastAPI()

    @app.get("/v1/customers/{customer_id}/recommendations")
    async def recommend(customer_id: str) -> dict[str, Any]:
        row = rows.get(customer_id)
        if row is None:
            raise HTTPException(404)
        scores = items @ users[row]
        top = np.argpartition(scores, -TOP)[-TOP:]
        best = top[np.argsort(-scores[top])][:SHOWN]
        return {"customer_id": customer_id, "items": [item_ids[i] for i in best]}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/customers/{customer_id}/recommendations")
    async def nothing(customer_id: str) -> dict[str, Any]:
        return {}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app
