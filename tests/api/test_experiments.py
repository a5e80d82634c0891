"""A/B variants end to end: assignment, model and rules per variant, recorded, ended live."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from api.rules_holder import load_checked_rules
from recsys.experiments import assign_variant, in_control_group
from recsys.rules.config import RulesConfigError, load_rules
from recsys.settings import Settings
from recsys.store.tables import customers, exposures
from tests.api.conftest import make_client, train
from training.artifacts import current_version, use_version

EXCLUDED = "electronics"


def _experiment(model_version: str) -> str:
    return f"""
[control]
share = 0.0

[[experiments]]
name = "newsletter-model"
placement = "newsletter"
[[experiments.variants]]
name = "base"
share = 0.5
[[experiments.variants]]
name = "popular-no-electronics"
share = 0.5
model_version = "{model_version}"
rules = {{ eligibility = {{ exclude_categories = ["{EXCLUDED}"] }} }}
"""


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    # A distinct modification time even on coarse clocks: the holder compares (mtime, size).
    stamp = time.time_ns() + 10**9
    os.utime(path, ns=(stamp, stamp))


def _customers(engine: Engine, n: int = 40) -> list[str]:
    with engine.connect() as conn:
        query = (
            select(customers.c.customer_id)
            .where(customers.c.marketing_opt_in.is_(True))
            .order_by(customers.c.customer_id)
            .limit(n)
        )
        return list(conn.execute(query).scalars())


@pytest.fixture
def two_models(served: tuple[Engine, Settings]) -> tuple[Engine, Settings, str, str]:
    engine, settings = served
    base = str(current_version(settings.models_dir))
    popular = train(engine, settings.models_dir, model="popular", at=datetime(2026, 11, 21))
    use_version(settings.models_dir, base)  # the ALS model stays the served one
    return engine, settings, base, popular


def test_variants_serve_their_model_and_rules_and_are_recorded_then_end_without_restart(
    two_models: tuple[Engine, Settings, str, str], tmp_path: Path
) -> None:
    engine, settings, base, popular = two_models
    rules_file = tmp_path / "rules.toml"
    _write(rules_file, _experiment(popular))
    settings = settings.model_copy(update={"rules_path": rules_file, "rules_check_seconds": 0.0})
    experiment = load_rules(rules_file).experiments[0]
    with make_client(engine, settings) as client:
        seen: dict[str, str] = {}
        for cid in _customers(engine):
            body = client.get(f"/v1/customers/{cid}/recommendations?placement=newsletter").json()
            variant = assign_variant(cid, experiment).name
            assert body["variant"] == variant, cid
            seen[body["exposure_id"]] = variant
            if variant == "base":
                assert body["model_version"] == base
            else:
                assert body["model_version"] == popular
                assert not any(i["category"].startswith(EXCLUDED) for i in body["items"])
            # The same customer always lands in the same variant.
            again = client.get(f"/v1/customers/{cid}/recommendations?placement=newsletter")
            assert again.json()["variant"] == variant
        assert set(seen.values()) == {"base", "popular-no-electronics"}
        # Other placements are not in the experiment.
        other = client.get(
            f"/v1/customers/{_customers(engine)[0]}/recommendations?placement=order_confirmation"
        )
        assert other.json()["variant"] is None
        client.app.state.exposures.flush()  # type: ignore[attr-defined]
        with engine.connect() as conn:
            query = select(exposures).where(exposures.c.placement == "newsletter")
            rows = {
                r.exposure_id: (r.experiment, r.variant, r.model_version)
                for r in conn.execute(query)
            }
        for exposure_id, variant in seen.items():
            model = base if variant == "base" else popular
            assert rows[exposure_id] == ("newsletter-model", variant, model)

        # The email block serves the same variant as the JSON list, and records it.
        cid = next(c for c in _customers(engine) if assign_variant(c, experiment).name != "base")
        body = client.get(f"/v1/customers/{cid}/recommendations?placement=newsletter").json()
        block = client.get(f"/v1/customers/{cid}/email-block?placement=newsletter")
        assert block.headers["X-Recsys-Variant"] == "popular-no-electronics"
        assert block.headers["X-Model-Version"] == popular
        for item in body["items"]:
            assert f'data-item-id="{item["item_id"]}"' in block.text
        client.app.state.exposures.flush()  # type: ignore[attr-defined]
        with engine.connect() as conn:
            row = conn.execute(
                select(exposures).where(exposures.c.exposure_id == block.headers["X-Exposure-Id"])
            ).one()
        assert (row.experiment, row.variant, row.model_version) == (
            "newsletter-model", "popular-no-electronics", popular
        )

        # A broken edit is refused: the running experiment goes on.
        for broken in (
            _experiment("no-such-version"),
            _experiment(popular).replace("share = 0.5\nmodel", "share = 0.4\nmodel"),
        ):
            _write(rules_file, broken)
            body = client.get(f"/v1/customers/{cid}/recommendations?placement=newsletter").json()
            assert body["variant"] == "popular-no-electronics"
            assert body["model_version"] == popular

        # Ending the experiment is deleting it from the file: the next request has no variant.
        _write(rules_file, "[control]\nshare = 0.0\n")
        body = client.get(f"/v1/customers/{cid}/recommendations?placement=newsletter").json()
        assert body["variant"] is None and body["model_version"] == base


def test_an_unknown_model_version_or_bad_shares_are_config_errors(
    two_models: tuple[Engine, Settings, str, str], tmp_path: Path
) -> None:
    _, settings, _, popular = two_models
    path = tmp_path / "rules.toml"
    path.write_text(_experiment("2020-01-01T00-00-00-als"), encoding="utf-8")
    with pytest.raises(RulesConfigError) as caught:
        load_checked_rules(path, settings.models_dir)
    assert "experiments[0].variants[1].model_version" in str(caught.value)
    assert "2020-01-01T00-00-00-als" in str(caught.value) and popular in str(caught.value)
    path.write_text(_experiment(popular).replace("share = 0.5\nmodel", "share = 0.4\nmodel"))
    with pytest.raises(RulesConfigError, match=r"experiments\[0\]\.variants: .*sum to 1"):
        load_rules(path)


def test_the_service_refuses_to_start_on_an_unknown_model_version(
    two_models: tuple[Engine, Settings, str, str], tmp_path: Path
) -> None:
    engine, settings, _, _ = two_models
    path = tmp_path / "rules.toml"
    path.write_text(_experiment("2020-01-01T00-00-00-als"), encoding="utf-8")
    with pytest.raises(RulesConfigError, match="unknown model version"):
        make_client(engine, settings.model_copy(update={"rules_path": path}))


def test_a_held_out_customer_gets_no_marketing_placement_in_any_variant(
    two_models: tuple[Engine, Settings, str, str], tmp_path: Path
) -> None:
    engine, settings, _, popular = two_models
    path = tmp_path / "rules.toml"
    path.write_text(_experiment(popular).replace("share = 0.0", "share = 0.3"), encoding="utf-8")
    rules = load_rules(path)
    held = [c for c in _customers(engine, 400) if in_control_group(c, rules.control)]
    variants = {assign_variant(c, rules.experiments[0]).name for c in held}
    assert len(variants) == 2  # both arms have held-out customers
    with make_client(engine, settings.model_copy(update={"rules_path": path})) as client:
        for cid in held:
            for placement in ("newsletter", "anniversary", "birthday"):
                body = client.get(
                    f"/v1/customers/{cid}/recommendations?placement={placement}"
                ).json()
                assert body["items"] == [] and body["suppressed"] == "held_out"
            block = client.get(f"/v1/customers/{cid}/email-block?placement=newsletter")
            assert 'class="recsys-item"' not in block.text
            assert block.headers["X-Recsys-Suppressed"] == "held_out"
            # Transactional mail still serves.
            confirmation = client.get(
                f"/v1/customers/{cid}/recommendations?placement=order_confirmation"
            ).json()
            assert confirmation["items"] and confirmation["suppressed"] is None
