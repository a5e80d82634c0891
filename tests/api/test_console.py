"""The marketer console over HTTP: pages, status codes, escaping, sign-in, read-only preview."""

from __future__ import annotations

import html
import io
import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update

from api.console.auth import COOKIE, session_token, valid_session
from recsys.settings import Settings
from recsys.store.tables import contact_log, customers, items, orders, vouchers
from tests.api.conftest import make_client, top_buyer

HOSTILE = "<script>alert(1)</script>"


def _due_day(engine: Engine) -> date:
    """A day on which some customer of the demo has a membership anniversary."""
    with engine.connect() as conn:
        joined = conn.execute(
            select(customers.c.joined_at)
            .where(customers.c.joined_at < date(2025, 11, 1), customers.c.email.is_not(None))
            .order_by(customers.c.customer_id)
            .limit(1)
        ).scalar()
    assert isinstance(joined, date)
    return joined.replace(year=2026) if (joined.month, joined.day) != (2, 29) else date(2026, 2, 28)


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            int(conn.execute(select(func.count()).select_from(contact_log)).scalar() or 0),
            int(conn.execute(select(func.count()).select_from(vouchers)).scalar() or 0),
        )


def test_open_console_says_so_and_finds_customers(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    home = client.get("/console")
    assert home.status_code == 200 and "text/html" in home.headers["content-type"]
    assert "This console is open" in home.text
    customer_id = top_buyer(engine)
    with engine.connect() as conn:
        email = conn.execute(
            select(customers.c.email).where(customers.c.customer_id == customer_id)
        ).scalar()
    for query in (customer_id, str(email).upper()):
        found = client.get("/console/search", params={"q": query}, follow_redirects=False)
        assert found.status_code == 303
        assert found.headers["location"] == f"/console/customers/{quote(customer_id, safe='')}"
    several = client.get("/console/search", params={"q": customer_id[:3]})
    assert several.status_code == 200 and "customers match" in several.text
    assert client.get("/console/search", params={"q": "  "}).status_code == 422
    missing = client.get("/console/search", params={"q": HOSTILE})
    assert missing.status_code == 404
    assert HOSTILE not in missing.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in missing.text


def test_customer_page_shows_tier_dates_orders_and_learned_categories(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    customer_id = top_buyer(engine)
    page = client.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200
    loyalty = client.get(f"/v1/customers/{customer_id}/loyalty").json()
    text = page.text
    assert f'<p class="tier" id="tier">{loyalty["tier"]}</p>' in text
    assert f'id="member-since">{loyalty["member_since"]}<' in text
    assert f'id="next-anniversary">{loyalty["next_anniversary"]}<' in text
    for benefit in loyalty["benefits"]:
        assert benefit in text
    with engine.connect() as conn:
        n_orders = conn.execute(
            select(func.count()).where(orders.c.customer_id == customer_id)
        ).scalar()
    timeline = text.split('id="orders"')[1].split("</ol>")[0]
    assert timeline.count('<p class="when">') == n_orders
    assert re.search(r'<table id="categories">.*?<tbody>\s*<tr data-category="', text, re.S)
    assert re.search(r'<li data-item-id="[^"]+" data-kind="', text)
    assert "/placements" in text


def test_placements_page_matches_the_api(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    customer_id = top_buyer(engine)
    page = client.get(f"/console/customers/{customer_id}/placements")
    assert page.status_code == 200
    shown = 0
    for placement in ("order_confirmation", "anniversary", "newsletter", "birthday"):
        body = client.get(
            f"/v1/customers/{customer_id}/recommendations",
            params={"placement": placement, "explain": "true"},
        ).json()
        section = page.text.split(f'id="placement-{placement}"')[1].split("</section>")[0]
        served_block = section.split('class="removed"')[0]
        assert re.findall(r'class="recsys-item" data-item-id="([^"]+)"', served_block) == [
            i["item_id"] for i in body["items"]
        ]
        removed = re.findall(r'<tr data-item-id="([^"]+)" data-reason="([^"]+)"', section)
        assert removed == [(e["item_id"], e["reason"]) for e in body["removed"]]
        shown += len(body["items"]) + len(removed)
    assert shown > 0


def test_unknown_and_hostile_customers_are_clear_4xx(client: TestClient) -> None:
    for path in ("/console/customers/nobody", "/console/customers/nobody/placements"):
        page = client.get(path)
        assert page.status_code == 404 and "Unknown customer" in page.text
        assert "nobody" in page.text
    hostile = client.get(f"/console/customers/{quote(HOSTILE, safe='')}")
    assert hostile.status_code == 404
    assert HOSTILE not in hostile.text and "&lt;script&gt;" in hostile.text
    bad_id = client.get("/console/customers/" + quote("a\x01b", safe=""))
    assert bad_id.status_code == 422
    assert client.get("/console/customers/x?as_of=yesterday").status_code == 422
    far = client.get("/console/customers/x/placements?as_of=0001-01-01")
    assert far.status_code == 422 and "outside the years" in far.text


def test_hostile_item_names_are_escaped_on_the_placements_page(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    with engine.begin() as conn:
        conn.execute(
            update(items).values(name=HOSTILE, revision=items.c.revision + 10**15)
        )
    client.app.state.catalog.refresh()  # type: ignore[attr-defined]
    page = client.get(f"/console/customers/{top_buyer(engine)}/placements")
    assert page.status_code == 200
    assert HOSTILE not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_campaign_preview_is_a_dry_run_that_writes_nothing(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    day = _due_day(engine)
    before = _counts(engine)
    page = client.get("/console/campaigns", params={"date": day.isoformat()})
    assert page.status_code == 200
    selected = int(re.search(r'id="selected">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    would = int(re.search(r'id="would-send">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    skipped = sum(int(n) for n in re.findall(r'id="skip-[a-z_]+">(\d+)<', page.text))
    assert selected >= 1 and would + skipped == selected
    assert page.text.count('class="card sample"') == min(would, 6)
    if would:
        assert "DRYRUN-" in page.text
    assert _counts(engine) == before
    # The same day again is still a preview of the same offers: nothing was recorded.
    again = client.get("/console/campaigns", params={"date": day.isoformat()})
    assert f'id="would-send">{would}<' in again.text
    assert _counts(engine) == before


def test_campaign_preview_refuses_bad_input(client: TestClient) -> None:
    assert client.get("/console/campaigns").status_code == 200  # the form alone
    for params in ({"date": "2026-02-30"}, {"date": "tomorrow"}, {"date": HOSTILE}):
        page = client.get("/console/campaigns", params=params)
        assert page.status_code == 422 and "is not a date" in page.text
        assert HOSTILE not in page.text
    for far in ("0001-01-01", "9999-12-31"):
        page = client.get("/console/campaigns", params={"date": far})
        assert page.status_code == 422 and "outside the years 1900 to 2999" in page.text
    bad = client.get("/console/campaigns", params={"date": "2026-11-20", "occasion": "xmas"})
    assert bad.status_code == 422 and "not an occasion" in bad.text


def test_model_page_shows_version_categories_and_reports(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    _, settings = served
    page = client.get("/console/model")
    version = client.get("/readyz").json()["model_version"]
    assert page.status_code == 200 and f'id="served-version">{version}<' in page.text
    assert 'id="no-impact"' in page.text and 'id="no-evaluation"' in page.text
    assert re.search(r'<table id="category-table">.*?<tbody>\s*<tr><td>', page.text, re.S)
    report = settings.home / "reports" / "2026-12-01"
    report.mkdir(parents=True)
    (report / "impact.json").write_text(
        json.dumps({"from": "2026-11-01", "to": "2026-11-30", "uplift": 0.042,
                    "arms": [{"arm": "treatment", "orders": 10}, {"arm": "control", "orders": 7}]})
    )
    (report / "impact.html").write_text("<html><body>impact page</body></html>")
    (report / "report.json").write_text(
        json.dumps({"k": 10, "served": "als", "results": [
            {"model": "als", "target": "all", "users": 5, "metrics": {"recall@10": 0.25}},
            {"model": "served@newsletter", "target": "all", "users": 5,
             "metrics": {"recall@10": 0.125}},
        ]})
    )
    page = client.get("/console/model")
    assert 'id="no-impact"' not in page.text and "0.042" in page.text and "treatment" in page.text
    assert "0.2500" in page.text
    # The served list comes first, the raw model after it.
    served = page.text.index('id="evaluation-served"')
    assert served < page.text.index("0.1250") < page.text.index('id="evaluation-raw"')
    assert page.text.index('id="evaluation-raw"') < page.text.index("0.2500")
    assert 'id="served-model">Served model in this evaluation: <strong>als</strong>' in page.text
    assert client.get("/console/model/impact.html").text.startswith("<html><body>impact page")
    assert client.get("/console/model/report.html").status_code == 404
    assert client.get("/console/model/other.html").status_code == 404


def test_model_page_shows_the_impact_report_as_recsys_writes_it(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    from recsys.campaign.job import run_campaign
    from recsys.feedback.report import impact_report, write_impact_report

    engine, settings = served
    state = client.app.state  # type: ignore[attr-defined]
    rules = state.rules_holder.rules
    day = _due_day(engine)
    # A real campaign (its exposures, some held out) and the report `recsys report impact`
    # writes about it, where that command writes it by default.
    run_campaign(
        engine, state.model_holder.get(), rules, state.catalog.get(),
        occasion="anniversary", day=day, out=io.StringIO(), journal_dir=None,
    )
    report = impact_report(engine, day, day, rules)
    write_impact_report(report, settings.reports_dir / "impact")
    assert report["groups"]
    page = client.get("/console/model")
    assert page.status_code == 200 and 'id="no-impact"' not in page.text
    assert f"Exposures shown {day.isoformat()} to {day.isoformat()}" in page.text
    for group in report["groups"]:
        row = page.text.split(f'data-group="{group["kind"]}:{group["name"]}"')[1]
        row = row.split("</tr>")[0]
        held_out = group["held_out_exposures"]
        held = f" ({held_out})" if held_out is not None else ""
        assert f"<td>{group['exposures']}{held}</td>" in row
        verdict = (group["vs_control"] or {}).get("verdict") or "no control group"
        assert html.escape(verdict, quote=False) in row
    assert client.get("/console/model/impact.html").status_code == 200


def test_keys_protect_the_console_with_a_login(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    keyed = settings.model_copy(update={"api_keys": [SecretStr("k-one"), SecretStr("k-two")]})
    customer_id = top_buyer(engine)
    with make_client(engine, keyed) as client:
        target = f"/console/customers/{customer_id}"
        gate = client.get(target, follow_redirects=False)
        assert gate.status_code == 303 and gate.headers["location"].startswith("/console/login")
        login = client.get(gate.headers["location"])
        assert login.status_code == 200 and 'type="password"' in login.text
        assert "This console is open" not in login.text
        wrong = client.post("/console/login", data={"api_key": "nope", "next": target})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert COOKIE not in client.cookies
        ok = client.post(
            "/console/login", data={"api_key": "k-two", "next": target}, follow_redirects=False
        )
        assert ok.status_code == 303 and ok.headers["location"] == target
        assert "httponly" in ok.headers["set-cookie"].lower()
        assert client.get(target).status_code == 200
        # The cookie opens the console, not the API.
        assert client.get(f"/v1/customers/{customer_id}/loyalty").status_code == 401
        client.post("/console/logout")
        assert client.get(target, follow_redirects=False).status_code == 303
        # No open redirect after sign-in.
        away = client.post(
            "/console/login",
            data={"api_key": "k-one", "next": "https://evil.example/"},
            follow_redirects=False,
        )
        assert away.headers["location"] == "/console"


def test_session_tokens_expire_and_die_with_their_key(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, api_keys=[SecretStr("k-one")])  # type: ignore[call-arg]
    token = session_token("k-one", now=1000.0)
    assert valid_session(settings, token, now=1001.0)
    assert not valid_session(settings, token, now=1000.0 + 9 * 3600)
    assert not valid_session(settings, session_token("k-gone", now=1000.0), now=1001.0)
    assert not valid_session(settings, "garbage", now=1001.0)
    assert not valid_session(settings, "99999999999.abc", now=1001.0)
