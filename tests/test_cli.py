"""The `recsys` command end to end on a small demo retailer (SQLite), as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECSYS_HOME", str(tmp_path))
    monkeypatch.delenv("RECSYS_DATABASE_URL", raising=False)
    return tmp_path


def recsys(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def load_demo(home: Path) -> None:
    code, out = recsys("demo-data", "--customers", "300", "--items", "80", "--out", str(home / "d"))
    assert code == 0, out
    for kind, name in (
        ("catalog", "catalog.csv"),
        ("customers", "customers.csv"),
        ("transactions", "transactions.csv.gz"),
    ):
        code, out = recsys("ingest", kind, str(home / "d" / name))
        assert code == 0, out
        assert "rejected 0" in out


def test_train_list_tier_rules_evaluate(home: Path) -> None:
    load_demo(home)
    code, out = recsys("train", "--model", "popular")
    assert code == 0 and "(current)" in out, out
    code, out = recsys("train", "--model", "als", "--iterations", "3", "--candidates", "7")
    assert code == 0 and "precompute" in out, out
    # every stage of the command, in the order it ran
    split = next(line for line in out.splitlines() if " fit " in line)
    stages = [part.strip().rsplit(" ", 1)[0] for part in split.split(",")]
    assert stages == ["read", "rule learning", "matrix", "fit", "precompute", "save", "verify"]
    from training.artifacts import load_model

    assert load_model(home / "models").recommender.precomputed == 7
    code, out = recsys("models", "list")
    assert code == 0 and "popular" in out and "als" in out
    first = next(p.name for p in (home / "models").iterdir() if p.name.endswith("-popular"))
    code, out = recsys("models", "use", first)
    assert code == 0 and first in out
    assert (home / "models" / "current").read_text().strip() == first

    code, out = recsys("tier", "C000001", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert status["customer_id"] == "C000001" and status["window_days"] == 365
    code, out = recsys("tier", "nobody")
    assert code != 0 and "not known" in out

    code, out = recsys("rules", "check")
    body, _, last = out.rstrip().rpartition("\n")
    assert code == 0 and last.endswith(": valid")
    assert json.loads(body)["loyalty"]["window_days"] == 365
    code, out = recsys("rules", "learned")
    assert code == 0 and "electronics/tv" in out and "came back" in out

    code, out = recsys(
        "evaluate", "--models", "popular,repurchase", "--holdout-days", "30",
        "--out", str(home / "report"),
    )
    assert code == 0, out
    report = json.loads((home / "report" / "report.json").read_text())
    assert {r["model"] for r in report["results"]} >= {"popular", "repurchase"}
    assert (home / "report" / "report.html").read_text().startswith("<!")


def test_bad_training_requests_fail_clearly_and_keep_the_current_model(home: Path) -> None:
    code, out = recsys("train", "--model", "popular")
    assert code != 0 and "current model was not changed" in out
    load_demo(home)
    code, out = recsys("train", "--model", "popular")
    assert code == 0
    current = (home / "models" / "current").read_text()
    code, out = recsys("train", "--model", "deep-magic")
    assert code != 0 and "unknown model" in out
    assert (home / "models" / "current").read_text() == current


def test_bad_rules_file_is_refused_with_the_key_path(home: Path) -> None:
    bad = home / "rules.toml"
    bad.write_text("[loyalty]\nwindow_days = 'a year'\n")
    code, out = recsys("rules", "check", str(bad))
    assert code != 0 and "loyalty.window_days" in out


def test_rules_check_refuses_an_experiment_on_a_model_version_that_is_not_saved(
    home: Path,
) -> None:
    path = home / "rules.toml"
    path.write_text(
        '[[experiments]]\nname = "e"\nplacement = "newsletter"\n'
        '[[experiments.variants]]\nname = "a"\nshare = 0.5\n'
        '[[experiments.variants]]\nname = "b"\nshare = 0.5\nmodel_version = "v-missing"\n'
    )
    code, out = recsys("rules", "check", str(path))
    assert code == 2 and "experiments[0].variants[1].model_version" in out and "v-missing" in out
    path.write_text(path.read_text().replace('\nmodel_version = "v-missing"', ""))
    code, out = recsys("rules", "check", str(path))
    assert code == 0 and "valid" in out


def test_ingest_bad_input(home: Path) -> None:
    code, out = recsys("ingest", "orders", "x.csv")
    assert code != 0 and "unknown kind" in out
    code, out = recsys("ingest", "catalog", str(home / "missing.csv"))
    assert code != 0 and "no such file" in out and "nothing was loaded" in out
    (home / "t.csv").write_text("a,b\n1,2\n")
    code, out = recsys("ingest", "transactions", str(home / "t.csv"), "--map", "a=colour")
    assert code != 0 and "not a transactions column" in out


def test_demo_campaign_responses_and_impact_report(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo end to end: a campaign with a holdout, simulated responses, the report."""
    code, out = recsys("demo-data", "--customers", "400", "--items", "80", "--out",
                       str(home / "d"), "--due-date", "2026-10-01", "--due-share", "0.6",
                       "--end", "2026-09-28")
    assert code == 0, out
    # The history ends on --end, before the campaign day.
    import gzip

    with gzip.open(home / "d" / "transactions.csv.gz", "rt", encoding="utf-8") as lines:
        header = next(lines).rstrip("\n").split(",")
        at = header.index("purchased_at")
        days = {line.split(",")[at][:10] for line in lines}
    assert "2026-09-01" <= max(days) <= "2026-09-28"
    for kind, name in (("catalog", "catalog.csv"), ("customers", "customers.csv"),
                       ("transactions", "transactions.csv.gz")):
        assert recsys("ingest", kind, str(home / "d" / name))[0] == 0
    assert recsys("train", "--model", "popular")[0] == 0
    rules = home / "rules.toml"
    rules.write_text("[control]\nshare = 0.0\nholdouts = { anniversary = 0.5 }\n")
    monkeypatch.setenv("RECSYS_RULES_PATH", str(rules))
    offers = home / "offers.jsonl"
    code, out = recsys("campaign", "anniversary", "--date", "2026-10-01", "--out", str(offers),
                       "--workers", "1")
    assert code == 0, out
    sent = len(offers.read_text().splitlines())
    code, out = recsys("demo-responses", "--offers", str(offers), "--uplift", "0.2")
    assert code == 0, out
    assert f"{sent:,} sent" in out and "simulated orders recorded" in out
    code, again = recsys("demo-responses", "--offers", str(offers), "--uplift", "0.2")
    assert code == 0 and "0 simulated orders recorded" in again
    code, out = recsys("report", "impact", "--from", "2026-10-01", "--to", "2026-10-01")
    assert code == 0, out
    report = json.loads((home / "reports" / "impact" / "impact.json").read_text())
    group = next(g for g in report["groups"] if g["name"] == "anniversary")
    assert group["treated"]["customers"] == sent and group["control"]["customers"] > 0
    assert group["vs_control"]["conversion"] is not None
    code, out = recsys("demo-responses", "--offers", str(home / "missing.jsonl"))
    assert code == 2 and "missing.jsonl" in out
