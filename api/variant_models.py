"""Model versions named by experiment variants, loaded on first use and kept."""

from __future__ import annotations

import threading
from pathlib import Path

import structlog

from recsys.offers import ServingModel
from training.errors import ArtifactError
from training.serving import load_serving_model

log = structlog.get_logger(__name__)


class VariantModels:
    def __init__(self, models_dir: Path) -> None:
        self._models_dir = models_dir
        self._lock = threading.Lock()
        self._models: dict[str, ServingModel] = {}

    def get(self, version: str) -> ServingModel | None:
        """The named version (memory-mapped like the current one), or None if it cannot load."""
        model = self._models.get(version)
        if model is not None:
            return model
        with self._lock:
            if version not in self._models:
                try:
                    self._models[version] = load_serving_model(self._models_dir, version)
                except (ArtifactError, OSError, ValueError, KeyError) as exc:
                    log.error("variant_model_refused", version=version, error=str(exc))
                    return None
            return self._models[version]
