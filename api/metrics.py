"""Prometheus metrics, one registry per app (no process-global collectors)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    fallbacks: Counter
    filtered: Counter
    model_info: Gauge

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "recsys_http_requests",
                "HTTP requests",
                ["route", "method", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "recsys_http_request_seconds",
                "HTTP request latency",
                ["route"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                registry=registry,
            ),
            fallbacks=Counter(
                "recsys_fallbacks",
                "responses served from the popularity fallback",
                ["placement"],
                registry=registry,
            ),
            filtered=Counter(
                "recsys_items_filtered",
                "candidate items removed, by rule",
                ["rule"],
                registry=registry,
            ),
            model_info=Gauge(
                "recsys_model_info",
                "the model version being served",
                ["version"],
                registry=registry,
            ),
        )


def _route_template(scope: Scope) -> str:
    # Label by route template, not raw path, so customer ids never become label values.
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    for candidate in scope["app"].router.routes:
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return str(getattr(candidate, "path", "unmatched"))
    return "unmatched"


class MetricsMiddleware:
    """Counts requests by route and status and times them (plain ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
