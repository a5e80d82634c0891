"""Errors of the training package.

    TrainingPipelineError
    ├── TrainingError     bad input or settings for training/evaluation
    └── ArtifactError     a model artifact is missing, corrupt or incompatible

Both leave the `current` model pointer untouched. (When `recsys/errors.py`
exists, the root here should subclass its `RecsysError`.)
"""

from __future__ import annotations

__all__ = ["ArtifactError", "TrainingError", "TrainingPipelineError"]


class TrainingPipelineError(Exception):
    """Root of the training package's errors."""


class TrainingError(TrainingPipelineError):
    """Training cannot run: empty data, a single customer, unknown model or parameter."""


class ArtifactError(TrainingPipelineError):
    """A model artifact cannot be saved, found or loaded (corrupt or wrong format)."""
