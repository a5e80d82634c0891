"""Campaign offers in the closed loop: exposures, held-out customers, variants (both stores)."""

from __future__ import annotations

import io
import json
from typing import Any

from sqlalchemy import select

from recsys.campaign import CampaignSummary, run_campaign
from recsys.experiments import assign_variant, campaign_holdout
from recsys.rules.config import RulesConfig, parse_rules
from recsys.store.contacts import contact_history
from recsys.store.tables import contact_log, exposures, vouchers
from tests.campaign.conftest import DAY, SENT_AT, Shop, read_lines, setup_shop

__all__ = ["setup_shop"]


def _rules(**sections: Any) -> RulesConfig:
    return parse_rules(sections)


def _run(shop: Shop, rules: RulesConfig, out: io.StringIO, **kwargs: Any) -> CampaignSummary:
    return run_campaign(
        shop.engine, shop.model, rules, shop.catalog, occasion="anniversary", day=DAY, out=out,
        journal_dir=shop.settings.home / "campaigns", batch_size=3,
        **{"now": SENT_AT, **kwargs},
    )


def _exposures(shop: Shop) -> dict[str, dict[str, Any]]:
    with shop.engine.connect() as conn:
        return {r.exposure_id: dict(r._mapping) for r in conn.execute(select(exposures))}


def _log(shop: Shop) -> list[dict[str, Any]]:
    with shop.engine.connect() as conn:
        query = select(contact_log).where(contact_log.c.occasion == "anniversary")
        return [dict(r._mapping) for r in conn.execute(query)]


def test_every_offer_is_an_exposure_with_its_voucher_and_reason(shop: Shop) -> None:
    out = io.StringIO()
    _run(shop, shop.rules, out)
    lines = read_lines(out.getvalue())
    stored = _exposures(shop)
    assert sorted(stored) == sorted(line["exposure_id"] for line in lines)
    for line in lines:
        row = stored[line["exposure_id"]]
        assert row["customer_id"] == line["customer_id"] and row["placement"] == "anniversary"
        assert json.loads(row["items"]) == [i["item_id"] for i in line["items"]]
        assert row["voucher_code"] == line["voucher"]["code"]
        assert row["voucher_percent"] == line["voucher"]["percent"]
        assert row["voucher_reason"] == line["voucher_reason"] and row["held_out"] is False
        assert row["model_version"] == shop.model.version
    assert {r["customer_id"]: r["exposure_id"] for r in _log(shop)} == {
        line["customer_id"]: line["exposure_id"] for line in lines
    }


def test_a_dry_run_names_no_exposure_and_records_none(shop: Shop) -> None:
    out = io.StringIO()
    _run(shop, shop.rules, out, dry_run=True)
    assert all(line["exposure_id"] is None for line in read_lines(out.getvalue()))
    assert _exposures(shop) == {} and _log(shop) == []


def test_holdout_and_control_group_are_logged_held_out_and_sent_nothing(shop: Shop) -> None:
    # Half the campaign's audience held out, on top of a 20% global control group.
    rules = _rules(control={"share": 0.2, "holdouts": {"anniversary": 0.5}})
    out = io.StringIO()
    summary = _run(shop, rules, out)
    sent = {line["customer_id"] for line in read_lines(out.getvalue())}
    expected_held = {
        c for c in shop.cast.expected if campaign_holdout(c, "anniversary", rules.control)
    }
    assert expected_held and sent  # the draw splits this cast (fixed salt)
    assert sent == shop.cast.expected - expected_held
    assert summary.skipped["held_out"] == len(expected_held)
    logged = _log(shop)
    held_rows = {r["customer_id"]: r for r in logged if r["held_out"]}
    assert set(held_rows) == expected_held
    assert all(r["voucher_code"] is None for r in held_rows.values())
    stored = _exposures(shop)
    for cid, row in held_rows.items():
        exposure = stored[row["exposure_id"]]
        assert exposure["held_out"] is True and json.loads(exposure["items"]) == []
        assert exposure["customer_id"] == cid
        assert exposure["voucher_reason"] == campaign_holdout(cid, "anniversary", rules.control)
    with shop.engine.connect() as conn:
        owners = set(conn.execute(select(vouchers.c.customer_id)).scalars())
        # A held-out row is no contact: it does not count toward the cap.
        assert all(contact_history(conn, cid) == [] for cid in expected_held - {shop.cast.capped})
    assert owners == sent
    # A rerun changes nothing: the held-out customers were already decided for the day.
    again = io.StringIO()
    second = _run(shop, rules, again)
    assert again.getvalue() == "" and second.skipped["held_out"] == 0
    assert second.skipped["already_sent"] == len(shop.cast.expected)
    assert _log(shop) == logged and _exposures(shop) == stored


def test_a_variant_sets_the_voucher_and_is_recorded_on_each_exposure(shop: Shop) -> None:
    rules = _rules(
        control={"share": 0.0},
        experiments=[{
            "name": "anniv-voucher", "placement": "anniversary",
            "variants": [
                {"name": "tier", "share": 0.5},
                {"name": "two-percent", "share": 0.5, "voucher_percent": 2},
            ],
        }],
    )
    out = io.StringIO()
    _run(shop, rules, out)
    lines = read_lines(out.getvalue())
    stored = _exposures(shop)
    experiment = rules.experiments[0]
    names = set()
    for line in lines:
        variant = assign_variant(line["customer_id"], experiment).name
        names.add(variant)
        assert line["variant"] == variant
        assert stored[line["exposure_id"]]["variant"] == variant
        assert stored[line["exposure_id"]]["experiment"] == "anniv-voucher"
        if variant == "two-percent":
            assert (line["voucher"]["percent"], line["voucher_reason"]) == (2, "variant")
        else:
            assert line["voucher_reason"] in {"tier", "margin_cap"}
    assert names == {"tier", "two-percent"}


def test_likely_buyers_get_the_products_without_a_voucher(shop: Shop) -> None:
    # Any purchase day in the last year makes a customer "likely" at this threshold.
    rules = _rules(
        control={"share": 0.0},
        vouchers={"skip_likely_buyers": True, "likely_buyer_probability": 0.001},
    )
    out = io.StringIO()
    summary = _run(shop, rules, out)
    lines = read_lines(out.getvalue())
    assert summary.written == len(lines) == len(shop.cast.expected)
    without = [line for line in lines if line["voucher"] is None]
    assert without and all(line["voucher_reason"] == "likely_buyer" for line in without)
    assert all(line["items"] for line in without)
    stored = _exposures(shop)
    with shop.engine.connect() as conn:
        owners = set(conn.execute(select(vouchers.c.customer_id)).scalars())
    assert not owners & {line["customer_id"] for line in without}
    for line in without:
        row = stored[line["exposure_id"]]
        assert row["voucher_code"] is None and row["voucher_reason"] == "likely_buyer"
    # The contact log proves the offer by its exposure id: a rerun sends nothing twice.
    again = io.StringIO()
    assert _run(shop, rules, again).written == 0 and again.getvalue() == ""
