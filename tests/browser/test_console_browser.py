"""The marketer console in headless Chromium against `recsys serve`: a marketer's clicks,
bad input, a phone-width window and the key sign-in, each page photographed."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine, func, select

from recsys.offers import PLACEMENTS
from recsys.store.tables import contact_log, customers, exposures, order_lines, orders, vouchers
from tests.browser.conftest import DUE, HOSTILE, HOSTILE_ID, Console
from tests.browser.harness import (
    PHONE,
    chromium,
    page_overflow,
    screenshot,
    serve,
    unlabelled_controls,
)

pytestmark = pytest.mark.slow

WAIT_S = 30


def _written(engine: Engine) -> tuple[int, int, int]:
    """Rows of what a campaign or a served list would record."""
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            for t in (contact_log, vouchers, exposures)
        )


def _kept_items(engine: Engine, customer_id: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(order_lines.c.item_id, func.sum(order_lines.c.quantity))
            .join(orders, orders.c.order_id == order_lines.c.order_id)
            .where(orders.c.customer_id == customer_id)
            .group_by(order_lines.c.item_id)
        ).all()
    return {str(item) for item, quantity in rows if quantity > 0}


def _order_count(engine: Engine, customer_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(orders).where(orders.c.customer_id == customer_id)
            ).scalar()
            or 0
        )


def _newest_report(home: Path) -> dict[str, object]:
    path = max((home / "reports").rglob("report.json"), key=lambda p: p.stat().st_mtime)
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def _pwned(driver) -> object:  # type: ignore[no-untyped-def]
    return driver.execute_script("return window.__pwned === undefined ? null : window.__pwned")


def test_a_marketer_clicks_from_search_to_a_campaign_preview(console: Console, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    cid = console.customer_id
    api = httpx.Client(base_url=console.base, timeout=30)
    loyalty = api.get(f"/v1/customers/{quote(cid, safe='')}/loyalty").json()
    with console.engine.connect() as conn:
        email = conn.execute(
            select(customers.c.email).where(customers.c.customer_id == cid)
        ).scalar()
    assert email

    with chromium() as driver:
        wait = WebDriverWait(driver, WAIT_S)
        driver.get(console.base + "/console")
        assert "This console is open" in driver.find_element(By.ID, "console-open").text
        assert unlabelled_controls(driver) == []
        screenshot(driver, shots / "search.png")

        # search -> customer
        driver.find_element(By.ID, "q").send_keys(str(email).upper())
        driver.find_element(By.ID, "search-button").click()
        wait.until(ec.presence_of_element_located((By.ID, "tier")))
        assert driver.current_url.endswith(f"/console/customers/{quote(cid, safe='')}")
        assert driver.find_element(By.ID, "customer-id").text == cid
        assert driver.find_element(By.ID, "tier").text == loyalty["tier"]
        assert driver.find_element(By.ID, "member-since").text == loyalty["member_since"]
        assert driver.find_element(By.ID, "next-anniversary").text == loyalty["next_anniversary"]
        benefits = driver.find_element(By.ID, "benefits").text
        assert all(b in benefits for b in loyalty["benefits"])
        if loyalty["next_tier"]:
            progress = driver.find_element(By.ID, "tier-progress")
            assert 0.0 <= float(progress.get_attribute("value") or -1) <= 1.0
            assert loyalty["next_tier"] in driver.find_element(By.ID, "next-tier").text
        timeline = driver.find_elements(By.CSS_SELECTOR, "#orders > li")
        assert len(timeline) == _order_count(console.engine, cid)
        # The hostile item name is shown as text and runs nothing.
        assert HOSTILE in driver.find_element(By.ID, "orders").text
        assert _pwned(driver) is None
        # Learned behaviour: every kept item under its category, one click away.
        rows = driver.find_elements(By.CSS_SELECTOR, "#categories tbody tr[data-category]")
        assert rows
        held = {
            li.get_attribute("data-item-id")
            for li in driver.find_elements(By.CSS_SELECTOR, "#categories li[data-item-id]")
        }
        assert held == _kept_items(console.engine, cid)
        first = rows[0].find_element(By.CSS_SELECTOR, "details li")
        assert not first.is_displayed()
        rows[0].find_element(By.TAG_NAME, "summary").click()
        assert first.is_displayed() and "bought" in first.text
        assert unlabelled_controls(driver) == []
        screenshot(driver, shots / "customer.png")

        # customer -> placements, explained (the same answer as explain=true)
        driver.find_element(By.ID, "placements-link").click()
        wait.until(ec.presence_of_element_located((By.ID, "placement-newsletter")))
        removed_total = 0
        for placement in PLACEMENTS:
            body = api.get(
                f"/v1/customers/{quote(cid, safe='')}/recommendations",
                params={"placement": placement, "explain": "true"},
            ).json()
            section = driver.find_element(By.ID, f"placement-{placement}")
            served = [
                el.get_attribute("data-item-id")
                for el in section.find_elements(By.CSS_SELECTOR, ".served .recsys-item")
            ]
            assert served == [i["item_id"] for i in body["items"]]
            names = section.find_elements(By.CSS_SELECTOR, ".served .recsys-name")
            assert [n.text for n in names] == [i["name"] or i["item_id"] for i in body["items"]]
            rows = section.find_elements(By.CSS_SELECTOR, ".removed-table tbody tr")
            assert [
                (r.get_attribute("data-item-id"), r.get_attribute("data-reason")) for r in rows
            ] == [(e["item_id"], e["reason"]) for e in body["removed"]]
            for row, explained in zip(rows, body["removed"], strict=True):
                assert explained["detail"] in row.text
            removed_total += len(rows)
        assert removed_total > 0
        assert _pwned(driver) is None
        assert unlabelled_controls(driver) == []
        screenshot(driver, shots / "placements.png")

        # placements -> campaign preview: a dry run that records nothing
        before = _written(console.engine)
        driver.find_element(By.LINK_TEXT, "Preview a campaign").click()
        day = wait.until(ec.presence_of_element_located((By.ID, "date")))
        driver.execute_script("arguments[0].value = arguments[1]", day, DUE.isoformat())
        Select(driver.find_element(By.ID, "occasion")).select_by_value("anniversary")
        driver.find_element(By.ID, "preview-button").click()
        wait.until(ec.presence_of_element_located((By.ID, "summary")))
        selected = int(driver.find_element(By.ID, "selected").text)
        would = int(driver.find_element(By.ID, "would-send").text)
        skipped = sum(
            int(el.text) for el in driver.find_elements(By.CSS_SELECTOR, "#summary dd[id^='skip-']")
        )
        assert selected >= 1 and would >= 1 and would + skipped == selected
        frames = driver.find_elements(By.CSS_SELECTOR, "iframe.email-preview")
        assert len(frames) == min(would, 6)
        driver.switch_to.frame(frames[0])
        assert driver.find_elements(By.CSS_SELECTOR, ".recsys-item")
        assert "DRYRUN-" in driver.find_element(By.TAG_NAME, "body").text
        driver.switch_to.default_content()
        assert _written(console.engine) == before
        assert unlabelled_controls(driver) == []
        screenshot(driver, shots / "campaign.png")

        # model and rules: the served version and the newest evaluation's served figures
        driver.find_element(By.LINK_TEXT, "Model and rules").click()
        wait.until(ec.presence_of_element_located((By.ID, "served-version")))
        version = api.get("/readyz").json()["model_version"]
        assert driver.find_element(By.ID, "served-version").text == version
        report = _newest_report(console.settings.home)
        assert "repurchase" in driver.find_element(By.ID, "served-model").text
        served_rows = [r for r in report["results"] if r["model"].startswith("served@")]  # type: ignore[attr-defined]
        assert served_rows
        shown = driver.find_elements(By.CSS_SELECTOR, "#evaluation-served tbody tr")
        assert [(r.get_attribute("data-model"), r.get_attribute("data-target")) for r in shown] == [
            (r["model"], r["target"]) for r in served_rows
        ]
        k = report["k"]
        recall = f"{served_rows[0]['metrics'][f'recall@{k}']:.4f}"
        assert recall in shown[0].text
        assert driver.find_elements(By.CSS_SELECTOR, "#category-table tbody tr td")
        assert driver.find_elements(By.ID, "no-impact")
        screenshot(driver, shots / "model.png")
    assert all((shots / n).stat().st_size > 10_000 for n in ("customer.png", "campaign.png"))


def test_bad_input_is_a_clear_message_escaped_and_changes_nothing(
    console: Console, shots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    api = httpx.Client(base_url=console.base, timeout=30)
    before = _written(console.engine)
    hostile = quote(HOSTILE, safe="")
    cid = quote(console.customer_id, safe="")
    # name: (path, status, message on the page, whether the page repeats the hostile text)
    cases = {
        "unknown": (f"/console/customers/{hostile}", 404, "Unknown customer", True),
        "search": (f"/console/search?q={hostile}", 404, "No customer has", True),
        "as_of": (f"/console/customers/{cid}?as_of=yesterday", 422, "is not a date", False),
        "campaign_date": (
            "/console/campaigns?date=2026-02-30&occasion=anniversary", 422, "is not a date", False
        ),
        "campaign_occasion": (
            f"/console/campaigns?date={DUE}&occasion={hostile}", 422, "is not an occasion", True
        ),
    }
    with chromium() as driver:
        for name, (path, status, message, repeats) in cases.items():
            assert api.get(path).status_code == status, name
            driver.get(console.base + path)
            shown = driver.find_element(By.TAG_NAME, "main").text
            assert message in shown, name
            if repeats:
                assert HOSTILE in shown, name  # as text, not markup
            assert _pwned(driver) is None, name
            assert not driver.find_elements(By.CSS_SELECTOR, "main script, main img[src='x']")
            screenshot(driver, shots / f"bad-{name}.png")
        # A customer whose id looks like markup: found, shown as text on every page.
        driver.get(console.base + "/console")
        driver.find_element(By.ID, "q").send_keys(HOSTILE_ID)
        driver.find_element(By.ID, "search-button").click()
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(ec.presence_of_element_located((By.ID, "tier")))
        assert driver.find_element(By.ID, "customer-id").text == HOSTILE_ID
        assert _pwned(driver) is None
        driver.find_element(By.ID, "placements-link").click()
        wait.until(ec.presence_of_element_located((By.ID, "placement-newsletter")))
        assert driver.find_element(By.ID, "customer-id").text == HOSTILE_ID
        assert _pwned(driver) is None
        screenshot(driver, shots / "hostile-id-placements.png")
    assert _written(console.engine) == before


def test_a_phone_width_window_reads_without_sideways_scrolling(
    console: Console, shots: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    cid = quote(console.customer_id, safe="")
    pages = {
        "search": "/console",
        "customer": f"/console/customers/{cid}",
        "placements": f"/console/customers/{cid}/placements",
        "campaign": f"/console/campaigns?date={DUE}&occasion=anniversary",
        "model": "/console/model",
    }
    with chromium(PHONE) as driver:
        for name, path in pages.items():
            driver.get(console.base + path)
            assert driver.execute_script("return window.innerWidth") == PHONE[0], name
            assert page_overflow(driver) == 0, name
            assert unlabelled_controls(driver) == [], name
            heading = driver.find_element(By.TAG_NAME, "h1")
            box = heading.rect
            assert heading.is_displayed() and box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
            size = driver.execute_script(
                "return parseFloat(getComputedStyle(document.body).fontSize)"
            )
            assert size >= 14, name
            screenshot(driver, shots / f"phone-{name}.png")
        # The search form fits and works at this width.
        driver.get(console.base + "/console")
        field = driver.find_element(By.ID, "q")
        assert field.rect["x"] + field.rect["width"] <= PHONE[0]
        field.send_keys(console.customer_id)
        driver.find_element(By.ID, "search-button").click()
        shown = WebDriverWait(driver, WAIT_S).until(
            ec.presence_of_element_located((By.ID, "customer-id"))
        )
        assert shown.text == console.customer_id


def test_a_key_signs_the_browser_in_and_out(console: Console, shots: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    target = f"/console/customers/{quote(console.customer_id, safe='')}"
    with (
        serve(
            console.settings.home,
            console.settings.database_url,
            tmp_path / "keyed.log",
            RECSYS_API_KEYS="k-browser,k-other",
        ) as base,
        chromium() as driver,
    ):
        wait = WebDriverWait(driver, WAIT_S)
        driver.get(base + target)
        assert "/console/login" in driver.current_url
        assert not driver.find_elements(By.ID, "console-open")
        assert unlabelled_controls(driver) == []
        driver.find_element(By.ID, "api_key").send_keys("wrong")
        driver.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button").click()
        error = wait.until(ec.presence_of_element_located((By.ID, "login-error")))
        assert "not valid" in error.text
        screenshot(driver, shots / "login-failed.png")
        driver.find_element(By.ID, "api_key").send_keys("k-browser")
        driver.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button").click()
        wait.until(ec.url_to_be(base + target))
        assert driver.find_element(By.ID, "customer-id").text == console.customer_id
        cookie = driver.get_cookie("recsys_console")
        assert cookie is not None and cookie["httpOnly"] and "k-browser" not in cookie["value"]
        # The session cookie opens the console only: the API still wants the key.
        assert httpx.get(base + f"/v1/customers/{quote(console.customer_id, safe='')}/loyalty",
                         cookies={"recsys_console": cookie["value"]}).status_code == 401
        driver.find_element(By.CSS_SELECTOR, "form.logout button").click()
        wait.until(ec.url_contains("/console/login"))
        driver.get(base + target)
        assert "/console/login" in driver.current_url
