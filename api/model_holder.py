"""Holds the served model and follows the artifact store's `current` pointer (hot reload)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import structlog

from recsys.offers import ServingModel
from training.artifacts import current_version
from training.errors import ArtifactError
from training.serving import load_serving_model

log = structlog.get_logger(__name__)


class ModelHolder:
    """The model a worker serves.

    Every `check_seconds` a request looks at the `current` pointer; when it
    names another version, that version is loaded and swapped in. With
    `background` (the service's default) the load runs in a thread while the
    old model keeps answering, so a switch never stalls or drops a request. A
    version that fails to load is refused (and remembered, so it is not retried
    on every request) while the previous model keeps serving.
    """

    def __init__(
        self, models_dir: Path, *, check_seconds: float = 1.0, background: bool = False
    ) -> None:
        self._models_dir = models_dir
        self._check_seconds = check_seconds
        self._background = background
        self._lock = threading.Lock()
        self._model: ServingModel | None = None
        self._refused: str | None = None
        self._checked_at = 0.0

    def get(self) -> ServingModel | None:
        now = time.monotonic()
        if now - self._checked_at >= self._check_seconds:
            if self._background and self._model is not None:
                self._checked_at = now
                if not self._lock.locked():
                    threading.Thread(target=self.refresh, daemon=True).start()
            else:
                self.refresh()
        return self._model

    def set(self, model: ServingModel) -> None:
        """Serve `model` directly (tests, or a process that trained it)."""
        with self._lock:
            self._model = model
            self._checked_at = time.monotonic()

    def refresh(self) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                wanted = current_version(self._models_dir)
            except (ArtifactError, OSError) as exc:
                log.warning("model_pointer_unreadable", error=str(exc))
                return
            serving = self._model.version if self._model is not None else None
            if wanted is None or wanted == serving or wanted == self._refused:
                return
            try:
                model = load_serving_model(self._models_dir, wanted)
            except (ArtifactError, OSError, ValueError, KeyError) as exc:
                self._refused = wanted
                log.error("model_refused", version=wanted, serving=serving, error=str(exc))
                return
            self._model = model
            self._refused = None
            log.info("model_loaded", version=model.version, previous=serving)
