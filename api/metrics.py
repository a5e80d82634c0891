"""Prometheus metrics, one registry per app (no process-global collectors).

`recsys serve` runs its workers in prometheus-client's multiprocess mode: it sets
`PROMETHEUS_MULTIPROC_DIR` before the workers start, each worker's counters and
histograms live in files there, and a scrape answered by any worker sums them all
(a worker that died keeps its counts). Without that variable (tests, an app run
in-process) the app's own registry is exposed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    fallbacks: Counter
    filtered: Counter
    #: The directory of multiprocess mode, or None for the app's own registry.
    multiprocess_dir: str | None = None
    #: Labelled children of `fallbacks` and `filtered` (see `count_offer`).
    _children: dict[tuple[str, str], Counter] = field(default_factory=dict, compare=False)

    def count_offer(self, placement: str, fallback: bool, removed: Mapping[str, int]) -> None:
        """A served list: a popularity fallback, and the candidates each rule removed.

        The labelled children are kept: `labels()` validates and locks on every call,
        and a list counts several rules.
        """
        if fallback:
            self._child(self.fallbacks, "fallback", placement).inc()
        for rule, count in removed.items():
            if count:
                self._child(self.filtered, "filtered", rule).inc(count)

    def _child(self, parent: Counter, name: str, value: str) -> Counter:
        child = self._children.get((name, value))
        if child is None:
            child = self._children[(name, value)] = parent.labels(value)
        return child

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
            multiprocess_dir=os.environ.get(MULTIPROC_ENV) or None,
        )

    def exposition(self, model_version: str | None) -> bytes:
        """The scrape body: every worker's counts (multiprocess mode) and the served version."""
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            registry = self.registry
        info = CollectorRegistry()
        info.register(_ModelInfo(model_version))
        return generate_latest(registry) + generate_latest(info)


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _ModelInfo(Collector):
    """`recsys_model_info{version=...} 1` of the worker answering the scrape.

    Computed per scrape rather than kept in a gauge: a multiprocess gauge would keep
    every version any worker ever served.
    """

    def __init__(self, version: str | None) -> None:
        self.version = version

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "recsys_model_info", "the model version being served", labels=["version"]
        )
        if self.version is not None:
            family.add_metric([self.version], 1.0)
        yield family


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
        # The labelled children, looked up once per label set: `labels()` validates and
        # locks on every call. The keys are the registry's own label sets, no more.
        self._counts: dict[tuple[str, str, str], Counter] = {}
        self._times: dict[str, Histogram] = {}

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
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            key = (route, scope["method"], str(status))
            count = self._counts.get(key)
            if count is None:
                count = self._counts[key] = self.metrics.requests.labels(*key)
            count.inc()
            timer = self._times.get(route)
            if timer is None:
                timer = self._times[route] = self.metrics.latency.labels(route)
            timer.observe(elapsed)
