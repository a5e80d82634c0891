"""Load a saved version as the `ServingModel` the API and the campaign job serve."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from recsys.offers import ServingModel
from training.artifacts import load_model
from training.errors import ArtifactError


def load_serving_model(models_dir: Path, version: str | None = None) -> ServingModel:
    """The current (or named) version with its learned rules data; raises ArtifactError.

    The arrays are memory-mapped: the workers of one service share them, and a
    request touches only its customer's rows.
    """
    loaded = load_model(models_dir, version, mmap=True)
    as_of = loaded.meta.metrics.get("data_as_of")
    # Orders after the data the model saw are folded in at request time; for a model
    # trained on an old export (or `--as-of`) that is the data's end, not the save time.
    trained_at = (
        datetime.fromisoformat(as_of) if isinstance(as_of, str) else loaded.meta.created_at
    )
    try:
        return ServingModel.from_parts(
            loaded.version,
            loaded.meta.model,
            loaded.recommender,
            loaded.extras,
            trained_at=trained_at,
            extra_arrays=loaded.extra_arrays,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{loaded.version}: learned rule data is corrupt: {exc}") from exc
