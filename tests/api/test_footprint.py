"""The service's workers hold the model, not the training and ingest toolchain.

Each worker pays for every module it imports (polars alone is about 40 MiB), and the
serving RSS goal (docs/benchmarks.md) is twice the model's data.
"""

from __future__ import annotations

import subprocess
import sys


def test_the_app_and_a_loaded_model_need_neither_polars_nor_alembic() -> None:
    code = (
        "import sys, api.app, training.serving, recsys.models.hybrid;"
        "print(','.join(m for m in ('polars', 'alembic') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == ""
