"""Served quality on real stores: what `recsys evaluate` reports, served rows first.

    python -m bench.quality /tmp/uci /tmp/cj /tmp/demo      # each a RECSYS_HOME

Each HOME must hold an ingested store (docs/evaluation.md gives the ingest commands for
UCI Online Retail, the Complete Journey sample and the demo retailer). The rules file is
RECSYS_RULES_PATH (default: the shipped one). Prints, per store, the served lists'
NDCG@10 on all purchases and on new items beside the baselines of the same run, the two
targets of issue 15 (served all > personal repurchase; served new >= 2.5x popular) and the
care violations of the served lists, and complement precision against co-occurrence and
popularity.
"""

from __future__ import annotations

import sys
from pathlib import Path

from recsys.rules.config import load_rules
from recsys.settings import Settings
from recsys.store.catalog import catalog_frame
from recsys.store.engine import create_store_engine
from recsys.store.purchases import purchase_frame
from training.evaluate import SERVED_PREFIX, evaluate


def _one(home: Path) -> None:
    settings = Settings(home=home)
    engine = create_store_engine(settings.database_url)
    with engine.connect() as conn:
        purchases = purchase_frame(conn)
        catalog = catalog_frame(conn)
    report = evaluate(purchases, catalog, rules=load_rules(settings.rules_path), ks=(10,))

    def ndcg(row: str, target: str) -> float:
        return report.result(row, target).metrics["ndcg@10"]

    print(f"\n{home}: test {report.cut:%Y-%m-%d}..{report.end:%Y-%m-%d}, served {report.served}")
    if report.selection is not None:
        print(f"  {report.selection.reason}")
    print(f"  {'list':28} {'ndcg@10 all':>12} {'ndcg@10 new':>12} {'care /1000':>11}")
    rows = [r.model for r in report.results if r.target == "all"]
    ordered = [r for r in rows if r.startswith(SERVED_PREFIX)] + [
        r for r in rows if not r.startswith(SERVED_PREFIX)
    ]
    for row in ordered:
        care = report.care.get(row)
        per = f"{care.per_1000()['total_per_1000']:.1f}" if care is not None else "-"
        print(f"  {row:28} {ndcg(row, 'all'):12.4f} {ndcg(row, 'new'):12.4f} {per:>11}")
    served = f"{SERVED_PREFIX}newsletter"
    discovery = f"{SERVED_PREFIX}anniversary"
    print(
        f"  target all: served {ndcg(served, 'all'):.4f} vs repurchase "
        f"{ndcg('repurchase', 'all'):.4f} -> "
        f"{'met' if ndcg(served, 'all') > ndcg('repurchase', 'all') else 'NOT met'}"
    )
    best_new = max(ndcg(p, "new") for p in (served, discovery))
    print(
        f"  target new: best served placement {best_new:.4f} vs 2.5 x popular "
        f"{2.5 * ndcg('popular', 'new'):.4f} -> "
        f"{'met' if best_new >= 2.5 * ndcg('popular', 'new') else 'NOT met'}"
    )
    if report.complements is not None:
        cp = report.complements
        print(f"  complement precision@{cp.k} (shown with an item, bought then or next order):")
        for scope, scores in cp.scores.items():
            line = ", ".join(
                f"{name} {s.precision:.4f} (hit {s.hit_rate:.4f})"
                for name, s in scores.methods.items()
            )
            print(f"    {scope} ({scores.anchors:,} anchors): {line}")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for home in argv:
        _one(Path(home))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
