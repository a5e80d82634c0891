"""Liveness, readiness and metrics. Open even when API keys are configured."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from api.deps import ModelHolderDep, StoreDep
from api.errors import error_response
from api.schemas import error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The store answers and a model is loaded",
    response_model=None,
    responses=error_responses(503),
)
def readyz(store: StoreDep, holder: ModelHolderDep) -> dict[str, str] | Response:
    try:
        with store.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return error_response(503, "not_ready", "the store is not reachable")
    model = holder.get()
    if model is None:
        return error_response(503, "not_ready", "no model is loaded; run `recsys train`")
    if not holder.intact():
        return error_response(
            503, "not_ready", f"the files of model {model.version} changed on disk"
        )
    return {"status": "ready", "model_version": model.version}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request, holder: ModelHolderDep) -> Response:
    model = holder.get()
    body = request.app.state.metrics.exposition(model.version if model is not None else None)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
