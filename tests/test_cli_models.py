"""`recsys models list` lists every version directory, the unreadable ones as broken."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app


def test_models_list_shows_versions_whose_meta_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    models = tmp_path / "models"
    (models / "2026-11-01T00-00-00-als").mkdir(parents=True)
    (models / "2026-11-01T00-00-00-als" / "meta.json").write_text("{not json")
    (models / "2026-11-02T00-00-00-bpr").mkdir()  # no meta.json at all
    (models / "current").write_text("2026-11-02T00-00-00-bpr\n")
    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "2026-11-01T00-00-00-als" in result.output
    assert "2026-11-02T00-00-00-bpr" in result.output
    assert result.output.count("broken") == 2
    assert "no models" not in result.output
