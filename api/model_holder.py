"""Holds the served model and follows the artifact store's `current` pointer (hot reload)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import structlog

from recsys.offers import ServingModel
from training.artifacts import current_version, list_versions
from training.errors import ArtifactError
from training.serving import load_serving_model

log = structlog.get_logger(__name__)

_LOAD_ERRORS = (ArtifactError, OSError, ValueError, KeyError)

#: (inode, size, mtime) of each file of the served version: a file written in place
#: (it should never be: versions are read-only) shows up as another signature.
_Signature = tuple[tuple[str, int, int, int], ...]


def _signature(folder: Path) -> _Signature:
    found = []
    for path in sorted(folder.iterdir()):
        stat = path.stat()
        found.append((path.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(found)


class ModelHolder:
    """The model a worker serves.

    Every `check_seconds` a request looks at the `current` pointer; when it
    names another version, that version is loaded and swapped in. With
    `background` (the service's default) the load runs in a thread while the
    old model keeps answering, so a switch never stalls or drops a request. A
    version that fails to load is refused (and remembered, so it is not retried
    on every request) while the previous model keeps serving.

    With nothing to serve (at start, or when the served version's files changed
    on disk) a refused `current` falls back to the newest version that loads, and
    the log says so. `intact()` tells `/readyz` whether the served files are still
    the ones loaded.
    """

    def __init__(
        self, models_dir: Path, *, check_seconds: float = 1.0, background: bool = False
    ) -> None:
        self._models_dir = models_dir
        self._check_seconds = check_seconds
        self._background = background
        self._lock = threading.Lock()
        self._model: ServingModel | None = None
        self._files: _Signature = ()
        self._refused: str | None = None
        self._no_fallback_for: str | None = None  # every version was tried for this current
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
            self._files = self._signature_of(model.version)
            self._checked_at = time.monotonic()

    def intact(self) -> bool:
        """Whether the served version's files are the ones it was loaded from."""
        model = self._model
        return model is None or not self._files or self._signature_of(model.version) == self._files

    def _signature_of(self, version: str) -> _Signature:
        try:
            return _signature(self._models_dir / version)
        except OSError:
            return ()

    def refresh(self) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            if self._model is not None and not self.intact():
                # Another process wrote into the served version. Its mapped pages may now
                # be gone: serve a version that loads instead, before a request meets them.
                log.error("model_files_changed", version=self._model.version)
                self._model, self._files = None, ()
                self._refused = None
            try:
                wanted = current_version(self._models_dir)
            except (ArtifactError, OSError) as exc:
                log.warning("model_pointer_unreadable", error=str(exc))
                return
            serving = self._model.version if self._model is not None else None
            if wanted is None or wanted == serving:
                return
            if wanted == self._refused:
                if self._model is None and self._no_fallback_for != wanted:
                    self._fall_back(wanted, "refused earlier")
                return
            try:
                model = load_serving_model(self._models_dir, wanted)
            except _LOAD_ERRORS as exc:
                self._refused = wanted
                log.error("model_refused", version=wanted, serving=serving, error=str(exc))
                if self._model is None:
                    self._fall_back(wanted, str(exc))
                return
            self._serve(model)
            self._refused = self._no_fallback_for = None
            log.info("model_loaded", version=model.version, previous=serving)

    def _serve(self, model: ServingModel) -> None:
        self._model = model
        self._files = self._signature_of(model.version)

    def _fall_back(self, refused: str, reason: str) -> None:
        """Serve the newest other version that loads (`current` is left as it is)."""
        try:
            candidates = [v.version for v in reversed(list_versions(self._models_dir))]
        except (ArtifactError, OSError):
            candidates = []
        for version in candidates:
            if version == refused:
                continue
            try:
                model = load_serving_model(self._models_dir, version)
            except _LOAD_ERRORS as exc:
                log.error("model_refused", version=version, error=str(exc))
                continue
            self._serve(model)
            log.warning(
                "model_fallback",
                version=version,
                current=refused,
                reason=reason,
                hint="`recsys models use VERSION` or `recsys train` makes a valid version current",
            )
            return
        self._no_fallback_for = refused
        log.error("no_model_loads", current=refused)
