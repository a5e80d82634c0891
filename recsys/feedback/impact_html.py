"""impact.html: the impact report as one self-contained page (tables, plots inlined as PNG)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_ENV = Environment(
    loader=PackageLoader("recsys.feedback", "templates"), autoescape=select_autoescape()
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _ci(interval: Mapping[str, Any] | None, fmt: Any) -> str:
    if not interval:
        return "-"
    low, high = interval["ci95"]
    return f"{fmt(interval['estimate'])} [{fmt(low)}, {fmt(high)}]"


def render_impact_html(report: Mapping[str, Any]) -> str:
    template = _ENV.get_template("impact.html")
    return template.render(
        r=report,
        sections=[("Placements and campaigns", ["placement", "campaign"]),
                  ("Experiment variants", ["variant"])],
        plots=_plots(report["groups"]),
        pct=_pct,
        money=_money,
        ci=_ci,
    )


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(groups: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    # Agg and an explicit Figure: no GUI backend, no global pyplot state.
    from matplotlib.figure import Figure

    if not groups:
        return []
    images = []
    names = [g["name"] for g in groups]
    fig = Figure(figsize=(11, 0.5 + 0.45 * len(groups)))
    ax = fig.add_subplot(1, 2, 1)
    ax.barh(names, [(g["ctr"] or 0) * 100 for g in groups], color="tab:blue")
    ax.set_xlabel("CTR, %")
    ax.invert_yaxis()
    ax = fig.add_subplot(1, 2, 2)
    ax.barh(names, [g["attributed"]["revenue"] or 0 for g in groups], color="tab:green",
            label="attributed revenue")
    ax.barh(names, [-(g["attributed"]["voucher_cost"] or 0) for g in groups], color="tab:red",
            label="voucher cost")
    ax.set_yticks([])
    ax.tick_params(axis="x", labelsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    images.append(("Clicks and attributed revenue", _png(fig)))

    compared = [g for g in groups if g.get("vs_control")]
    if compared:
        fig = Figure(figsize=(11, 0.5 + 0.45 * len(compared)))
        for pos, (field, label, scale) in enumerate(
            [("conversion", "conversion uplift, points", 100.0),
             ("incremental_revenue_net_of_vouchers", "incremental revenue net of vouchers", 1.0)],
            start=1,
        ):
            ax = fig.add_subplot(1, 2, pos)
            rows = [(g["name"], g["vs_control"][field]) for g in compared]
            for y, (_, interval) in enumerate(rows):
                if interval is None:
                    continue
                low, high = (v * scale for v in interval["ci95"])
                estimate = interval["estimate"] * scale
                small = compared[y]["vs_control"]["small_sample"]
                ax.errorbar(estimate, y, xerr=[[estimate - low], [high - estimate]], fmt="o",
                            color="tab:orange" if small else "tab:blue", capsize=4)
            ax.axvline(0, color="#888", lw=1)
            ax.set_yticks(range(len(rows)), [n for n, _ in rows] if pos == 1 else [""] * len(rows))
            ax.set_ylim(len(rows) - 0.5, -0.5)
            ax.set_xlabel(label)
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="x", alpha=0.3)
        images.append(("Treated vs control, 95% intervals (orange: small sample)", _png(fig)))
    return images
