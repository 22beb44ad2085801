"""The quality of the pairs the default (offline) provider writes, on three schemas (issue #13):

    .venv/bin/python -m bench.quality [--server-url postgresql://postgres@127.0.0.1:5432/postgres]

For the demo database, the second, differently shaped schema (HR and logistics) and the highway
service-area schema, each in a throwaway database dropped at the end, it runs the real steps 1-3 and
prints, before step 3 (the pairs step 2 wrote) and after it (what step 3 kept, after its quality pass
where there is one): the share of pairs about bookkeeping, the share with soft-delete filters where a
table needs one, the share with joins, the share whose question spells raw identifiers, the number of
duplicates, the share that sums a per-row rate (a price per unit, a rating), the share that joins through
a table only to connect two related ones (a detour), and step 3's EXPLAIN pass rate before repair. The
exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.support.quality_run import CASES, QualityMetrics, Result, measure_case


def _row(label: str, m: QualityMetrics, valid: str) -> str:
    return (
        f"  {label:<7}{m.pairs:>6} {m.bookkeeping:>12.0%} {m.soft_delete_filtered:>10.0%} ({m.soft_delete_needed:>3})"
        f" {m.joined:>8.0%} {m.raw_identifiers:>9.0%} {m.duplicates:>6} {m.summed_rates:>7.0%}"
        f" {m.detours:>8.0%} {valid:>8}"
    )


def report(results: list[Result]) -> str:
    lines = [
        "targets: bookkeeping <= 5%, soft-delete filtered >= 95%, joined >= 20%, raw identifiers <= 10%,"
        " 0 duplicates, 0 summed rates, 0 detours, valid before repair >= 95%",
        f"  {'':<7}{'pairs':>6} {'bookkeeping':>12} {'sd-filter':>10} {'(n)':>5} {'joined':>8} {'raw-ids':>9}"
        f" {'dups':>6} {'sums':>7} {'detours':>8} {'valid':>8}",
    ]
    for r in results:
        lines.append(f"{r.case}")
        lines.append(_row("before", r.before, f"{r.valid_before_repair:.0%}"))
        lines.append(_row("after", r.after, ""))
        misses = r.misses()
        lines.append("  " + ("MISSES: " + "; ".join(misses) if misses else "meets every target"))
    return "\n".join(lines)


async def main(server_url: str, only: list[str]) -> int:
    results = []
    for case in CASES:
        if only and case.name not in only:
            continue
        results.append(await measure_case(case, server_url))
    print(report(results))
    return 1 if any(r.misses() for r in results) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "cases", nargs="*", help="only these cases (" + ", ".join(c.name for c in CASES) + ")"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.server_url, args.cases)))
