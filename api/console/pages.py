"""The marketer console's pages: search, customer, placements explained, campaign preview,
model and rules.

Handlers are plain `def` (FastAPI runs them in its thread pool): they read the
store and run the rules or a whole dry-run campaign, which must not hold up the
event loop that serves `/v1`. Every value reaches the page through Jinja2's
autoescape. Errors a person can cause (unknown customer, a date that is not a
date) answer the page with a message and a 4xx; nothing here writes to the store.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Engine

from api.console.auth import (
    COOKIE,
    SESSION_SECONDS,
    is_open,
    key_matches,
    require_session,
    safe_next,
    session_token,
)
from api.console.reports import FoundReport, newest, scalars, tables
from api.email_blocks import render_block, render_email
from api.model_holder import ModelHolder
from recsys.customer_profile import build_profile
from recsys.customer_view import load_customer_data
from recsys.offers import PLACEMENTS, CustomerData, Offer, ServingModel, recommend_for_customer
from recsys.records import Item
from recsys.rules._time import replay_range, replayable
from recsys.rules.categories import resolve_behaviour
from recsys.rules.config import RulesConfig
from recsys.settings import Settings
from recsys.store.customers import find_customers

SAMPLE_OFFERS = 6
ITEMS_PER_PLACEMENT = 4
_ID = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("api.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["day"] = lambda value: value.strftime("%Y-%m-%d") if value else "—"
    env.filters["money"] = lambda value: "—" if value is None else f"{value:,.2f}"
    return env


templates = Jinja2Templates(env=_environment())
router = APIRouter(prefix="/console", include_in_schema=False)
Session = Annotated[None, Depends(require_session)]


class PageError(Exception):
    """A message for the person at the console, with the status to answer."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True, slots=True)
class _State:
    settings: Settings
    rules: RulesConfig
    catalog: Mapping[str, Item]
    holder: ModelHolder
    engine: Engine

    @property
    def model(self) -> ServingModel | None:
        return self.holder.get()


def _state(request: Request) -> _State:
    s = request.app.state
    return _State(s.settings, s.rules_holder.rules, s.catalog.get(), s.model_holder, s.engine)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a console page with what every page shows (open console, model version)."""
    state = _state(request)
    model = state.model
    base = {
        "console_open": is_open(state.settings),
        "model_version": model.version if model is not None else None,
        "nav": name,
    }
    response: HTMLResponse = templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status
    )
    return response


def error_page(request: Request, exc: PageError) -> HTMLResponse:
    return page(request, "error.html", exc.status, title=exc.title, message=exc.message)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_day(value: str, field: str) -> date:
    """`YYYY-MM-DD` or a 422 page saying what is wrong."""
    text = value.strip()
    if _DAY.match(text):
        try:
            day = date.fromisoformat(text)
        except ValueError:
            pass
        else:
            if not replayable(day):
                raise PageError(
                    422, "Out of range", f"{field} {value!r} is outside the years {replay_range()}."
                )
            return day
    raise PageError(422, "Not a date", f"{field} {value!r} is not a date; use YYYY-MM-DD.")


def _as_of(value: str | None) -> datetime:
    """The instant a page is evaluated at: now, or the end of an `as_of` day (UTC)."""
    if not value:
        return _now()
    day = parse_day(value, "as_of")
    return datetime(day.year, day.month, day.day, 23, 59, 59)


def _checked_id(customer_id: str) -> str:
    if not _ID.match(customer_id):
        raise PageError(
            422, "Not a customer id", "A customer id is 1 to 128 printable characters."
        )
    return customer_id


def _customer_data(state: _State, customer_id: str) -> CustomerData:
    with state.engine.connect() as conn:
        data = load_customer_data(conn, _checked_id(customer_id))
    if data.customer is None:
        raise PageError(
            404, "Unknown customer", f"No customer has the id {customer_id!r}."
        )
    return data


def _require_model(state: _State) -> ServingModel:
    model = state.model
    if model is None:
        raise PageError(503, "No model yet", "No model is loaded yet; run `recsys train`.")
    return model


# ---- sign-in --------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    if is_open(_state(request).settings):
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", next=safe_next(next), failed=False)


@router.post("/login")
async def login(request: Request) -> Response:
    settings = _state(request).settings
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0]
    target = safe_next((form.get("next") or [""])[0])
    if is_open(settings):
        return RedirectResponse(target, status_code=303)
    if not key or not key_matches(settings, key):
        return page(request, "login.html", 401, next=target, failed=True)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        session_token(key),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


# ---- search and customer --------------------------------------------------------------


@router.get("")
def home(request: Request, _: Session) -> Response:
    state = _state(request)
    return page(request, "home.html", query="", results=None, model=state.model)


@router.get("/search")
def search(request: Request, _: Session, q: str = "") -> Response:
    state = _state(request)
    text = q.strip()
    if not text:
        raise PageError(422, "Nothing to search", "Type a customer id or an email address.")
    if len(text) > 254:
        raise PageError(422, "Search too long", "A customer id or email is at most 254 characters.")
    with state.engine.connect() as conn:
        found = find_customers(conn, text)
    if len(found) == 1:
        return RedirectResponse(
            f"/console/customers/{quote(found[0].customer_id, safe='')}", status_code=303
        )
    return page(
        request,
        "home.html",
        200 if found else 404,
        query=text,
        results=found,
        model=state.model,
    )


@router.get("/customers/{customer_id:path}/placements")
def placements(
    request: Request, customer_id: str, _: Session, as_of: str | None = None
) -> Response:
    state = _state(request)
    now = _as_of(as_of)
    data = _customer_data(state, customer_id)
    model = _require_model(state)
    sections = []
    for placement in PLACEMENTS:
        offer = recommend_for_customer(
            model,
            state.rules,
            state.catalog,
            data,
            placement=placement,
            limit=ITEMS_PER_PLACEMENT,
            now=now,
            explain=True,
        )
        sections.append(_placement_section(offer, state.catalog))
    return page(
        request,
        "placements.html",
        customer=data.customer,
        sections=sections,
        now=now,
        as_of=as_of or "",
        model=model,
    )


def _placement_section(offer: Offer, catalog: Mapping[str, Item]) -> dict[str, Any]:
    removed = []
    for e in offer.explanation:
        item = catalog.get(e.item_id)
        removed.append(
            {
                "item_id": e.item_id,
                "name": item.name if item is not None else None,
                "category": item.category if item is not None else None,
                "rule": e.rule,
                "reason": e.reason,
                "detail": e.detail,
                "until": e.until,
            }
        )
    return {
        "placement": offer.placement,
        "items": offer.items,
        "block": render_block([i.to_dict() for i in offer.items], placement=offer.placement),
        "removed": removed,
        "suppressed": offer.suppressed,
        "fallback": offer.fallback,
    }


@router.get("/customers/{customer_id:path}")
def customer(request: Request, customer_id: str, _: Session, as_of: str | None = None) -> Response:
    state = _state(request)
    now = _as_of(as_of)
    data = _customer_data(state, customer_id)
    model = state.model
    profile = build_profile(
        data, state.catalog, model.behaviours if model else {}, state.rules, now
    )
    return page(request, "customer.html", profile=profile, now=now, as_of=as_of or "")


# ---- campaign preview -----------------------------------------------------------------


@router.get("/campaigns")
def campaigns(
    request: Request,
    _: Session,
    date: str | None = None,
    occasion: str = "anniversary",
) -> Response:
    from recsys.campaign.job import OCCASIONS, CampaignError, run_campaign

    state = _state(request)
    context: dict[str, Any] = {
        "occasions": OCCASIONS,
        "occasion": occasion,
        "day": date or _now().date().isoformat(),
        "summary": None,
        "samples": [],
    }
    if date is None:
        return page(request, "campaigns.html", **context)
    if occasion not in OCCASIONS:
        raise PageError(
            422,
            "Unknown occasion",
            f"{occasion!r} is not an occasion; choose {', '.join(OCCASIONS)}.",
        )
    day = parse_day(date, "date")
    model = _require_model(state)
    out = io.StringIO()
    try:
        summary = run_campaign(
            state.engine,
            model,
            state.rules,
            state.catalog,
            occasion=occasion,
            day=day,
            out=out,
            journal_dir=None,
            dry_run=True,
            limit_items=ITEMS_PER_PLACEMENT,
            valid_days=state.settings.voucher_valid_days,
            workers=1,
        )
    except CampaignError as exc:
        raise PageError(409, "Cannot preview this campaign", str(exc)) from exc
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
    samples = [
        {"offer": offer, "email": _campaign_email(offer)} for offer in lines[:SAMPLE_OFFERS]
    ]
    context.update(summary=summary, samples=samples, offers=len(lines))
    return page(request, "campaigns.html", **context)


def _campaign_email(offer: Mapping[str, Any]) -> str:
    block = render_block(offer.get("items") or [], placement=str(offer.get("occasion")))
    return render_email(
        "anniversary",
        block,
        occasion=offer.get("occasion"),
        years=offer.get("years"),
        tier=offer.get("tier"),
        voucher=offer.get("voucher"),
    )


# ---- model and rules ------------------------------------------------------------------


@router.get("/model")
def model_page(request: Request, _: Session) -> Response:
    state = _state(request)
    model = state.model
    reports = state.settings.reports_dir
    evaluation = newest(reports, "report.json")
    impact = newest(reports, "impact.json")
    categories = []
    if model is not None:
        for key in sorted(model.behaviours, key=lambda k: -model.behaviours[k].support):
            learned = model.behaviours[key]
            applied = resolve_behaviour(key, model.behaviours, state.rules.categories)
            categories.append({"learned": learned, "applied": applied})
    return page(
        request,
        "model.html",
        model=model,
        evaluation=_evaluation_view(evaluation),
        impact=_impact_view(impact),
        categories=categories,
        overrides=state.rules.categories.overrides,
        rules=state.rules,
    )


# Row names of report.json (training.evaluate, not imported: it pulls polars into the
# API's workers): `served@<placement>` is the served model with the rules on, per
# placement; `<model>+rules` every model's newsletter list with the rules on.
_SERVED_PREFIX = "served@"
_RULES_SUFFIX = "+rules"
_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def _evaluation_view(found: FoundReport | None) -> dict[str, Any] | None:
    """The newest report.json: served figures first, raw models beside them."""
    if found is None:
        return None
    data = found.data or {}
    k = data.get("k")
    groups: dict[str, list[dict[str, Any]]] = {"served": [], "ruled": [], "raw": []}
    for result in data.get("results") or []:
        if not isinstance(result, dict):
            continue
        name = str(result.get("model"))
        metrics = result.get("metrics") or {}
        group = (
            "served" if name.startswith(_SERVED_PREFIX)
            else "ruled" if name.endswith(_RULES_SUFFIX)
            else "raw"
        )
        groups[group].append(
            {
                "model": name,
                "target": result.get("target"),
                "users": result.get("users"),
                "metrics": [metrics.get(f"{n}@{k}") for n in _METRICS],
            }
        )
    selection = data.get("selection") if isinstance(data.get("selection"), dict) else None
    return {
        "found": found,
        "k": k,
        "names": [f"{n}@{k}" for n in _METRICS],
        "groups": [
            ("served", "Served lists, rules on (what customers get)", groups["served"]),
            ("ruled", "Every model served (newsletter, rules on)", groups["ruled"]),
            ("raw", "Raw models and baselines", groups["raw"]),
        ],
        "served": data.get("served"),
        "selection": selection,
        "rules": data.get("rules") if isinstance(data.get("rules"), dict) else None,
        "meta": [
            (key, data.get(key))
            for key in ("cut", "end", "holdout_days", "train_customers")
            if key in data
        ],
    }


def _impact_view(found: FoundReport | None) -> dict[str, Any] | None:
    """impact.json (`recsys report impact`, its shape in docs/feedback.md) as one row per
    group; a file of another shape is shown as its plain values and tables."""
    if found is None:
        return None
    data = found.data or {}
    groups = data.get("groups")
    if data.get("report") != "impact" or not isinstance(groups, list):
        return {"found": found, "groups": None, "scalars": scalars(data), "tables": tables(data)}
    return {
        "found": found,
        "groups": [_impact_row(g) for g in groups if isinstance(g, dict)],
        "period": (data.get("from"), data.get("to")),
        "generated_at": data.get("generated_at"),
        "windows": data.get("windows") if isinstance(data.get("windows"), dict) else {},
    }


def _impact_row(group: Mapping[str, Any]) -> dict[str, Any]:
    """One group of impact.json as flat values (None where the file has none)."""

    def part(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, dict) else {}

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) else None

    def interval(value: Any) -> tuple[float | None, float | None, float | None] | None:
        found = part(value)
        if not found:
            return None
        ci = found.get("ci95")
        low, high = ci if isinstance(ci, list) and len(ci) == 2 else (None, None)
        return number(found.get("estimate")), number(low), number(high)

    attributed = part(group.get("attributed"))
    against = "control" if part(group.get("vs_control")) else None
    versus = part(group.get("vs_control"))
    if not versus and part(group.get("vs_first_variant")):
        against, versus = "first variant", part(group.get("vs_first_variant"))
    return {
        "kind": group.get("kind"),
        "name": group.get("name"),
        "exposures": group.get("exposures"),
        "held_out": group.get("held_out_exposures"),
        "ctr": number(group.get("ctr")),
        "orders": attributed.get("orders"),
        "revenue": number(attributed.get("revenue")),
        "voucher_cost": number(attributed.get("voucher_cost")),
        "margin": number(attributed.get("margin")),
        "treated_conversion": number(part(group.get("treated")).get("conversion")),
        "control_conversion": number(part(group.get("control")).get("conversion")),
        "against": against,
        "conversion": interval(versus.get("conversion")),
        "net": interval(versus.get("incremental_revenue_net_of_vouchers")),
        "verdict": versus.get("verdict") if against else "no control group",
    }


@router.get("/model/{kind}.html")
def report_html(request: Request, kind: str, _: Session) -> Response:
    """The newest evaluation (`report`) or impact (`impact`) HTML report, as written."""
    names = {"report": "report.json", "impact": "impact.json"}
    if kind not in names:
        raise PageError(404, "No such report", "Reports are `report` and `impact`.")
    found = newest(_state(request).settings.reports_dir, names[kind])
    html: Path | None = found.html if found is not None else None
    if html is None:
        raise PageError(404, "No report", f"There is no {kind} report yet.")
    return FileResponse(html, media_type="text/html")
