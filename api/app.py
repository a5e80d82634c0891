"""The FastAPI application factory. No module-level engines, models or settings."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy import Engine

from api.behaviour_cache import BehaviourCache
from api.body_limit import BodyLimitMiddleware
from api.catalog_cache import CatalogCache
from api.console import install_console
from api.docs import install_docs
from api.errors import install_error_handlers
from api.metrics import Metrics, MetricsMiddleware
from api.model_holder import ModelHolder
from api.routes import email_blocks, events, health, loyalty, recommendations
from api.rules_holder import RulesHolder, load_checked_rules
from api.security import ApiKeyMiddleware, document_api_key
from api.variant_models import VariantModels
from recsys.feedback.writer import ExposureWriter
from recsys.rules.config import DEFAULT_RULES_PATH, RulesConfig
from recsys.settings import Settings
from recsys.store.engine import create_store_engine, migrate

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    rules: RulesConfig | None = None,
    model_holder: ModelHolder | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """Build the app. Tests pass their own engine, rules or model holder.

    `freeze_heap` (a served worker, `create_app_from_env`): once the model and the catalog
    are loaded, move everything alive to the collector's permanent generation
    (`gc.freeze`). Every full collection otherwise walks all the worker has loaded again
    (libraries, model, catalog: 140k objects at the demo size; averaged, a fortieth of a
    request's CPU, and over 100 ms at once), though none of it becomes garbage while it
    is served. Objects made later (catalog refreshes, a reloaded model) are collected as
    usual.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        app.state.engine = engine or create_store_engine(settings.database_url)
        migrate(app.state.engine)
        app.state.catalog = CatalogCache(app.state.engine, settings.catalog_refresh_seconds)
        app.state.model_holder = model_holder or ModelHolder(settings.models_dir, background=True)
        app.state.variant_models = VariantModels(settings.models_dir)
        app.state.exposures = (
            ExposureWriter(
                app.state.engine,
                flush_seconds=settings.exposure_flush_seconds,
                retention_days=settings.exposure_retention_days,
            )
            if settings.exposure_log
            else None
        )
        served = app.state.model_holder.get()
        if freeze_heap:
            app.state.catalog.get()
            gc.collect()
            gc.freeze()
        log.info("service_started", model_version=served.version if served else None)
        try:
            yield
        finally:
            if app.state.exposures is not None:
                app.state.exposures.close()
            if own_engine:
                app.state.engine.dispose()

    app = FastAPI(
        title="recsys",
        summary="Loyalty and personalized-offer recommender",
        version="1",
        lifespan=lifespan,
        # Served from installed assets instead of a CDN (`api.docs`).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Rules handed in stay fixed; otherwise the file is followed (experiments end without
    # a restart) and its experiments' model versions are checked at start.
    app.state.rules_holder = (
        RulesHolder(rules)
        if rules is not None
        else RulesHolder(
            load_checked_rules(settings.rules_path, settings.models_dir),
            path=settings.rules_path or DEFAULT_RULES_PATH,
            models_dir=settings.models_dir,
            check_seconds=settings.rules_check_seconds,
        )
    )
    app.state.metrics = Metrics.create()
    app.state.behaviours = BehaviourCache()
    install_error_handlers(app)

    # Plain ASGI middlewares (Starlette's decorator style costs about a millisecond a request).
    # The last added runs first: metrics count every answer, the key is checked before the
    # body is read or the route matched.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.include_router(health.router)
    for router in (recommendations.router, email_blocks.router, loyalty.router, events.router):
        app.include_router(router)
    _document_security(app, required=bool(settings.api_keys))
    install_docs(app)
    install_console(app)
    return app


def _document_security(app: FastAPI, *, required: bool) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches the document (and rebuilds it when routes change); marking it
        # again is idempotent and cheap.
        return document_api_key(build(), required=required)

    app.openapi = openapi  # type: ignore[method-assign]


def create_app_from_env() -> FastAPI:
    """Entry point for `recsys serve` (uvicorn's factory): settings from the environment."""
    import faulthandler

    from threadpoolctl import threadpool_limits

    from recsys.logs import configure_logging

    # Per-request scoring is single-customer work; BLAS threads would oversubscribe the cores.
    threadpool_limits(limits=1)
    # A worker killed by a signal (SIGBUS from a mapped file cut short, SIGSEGV) says so
    # on stderr, with the Python stack, before the supervisor replaces it.
    faulthandler.enable()
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings, freeze_heap=True)
