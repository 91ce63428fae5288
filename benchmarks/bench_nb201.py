"""Search strategies on the NAS-Bench-201 table (12-epoch cifar10 val): regret at equal budgets.

Targets (issue 6), against random search measured in the same run (its expected regret at
150 queries is 1.00, computed exactly from the table):
  regularized evolution <= 0.30 at 150 queries; the best strategy <= 0.15 at 150 queries.
Prints the full table over every strategy (50 seeds) and writes nb201_regret.png beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from rich.console import Console

from edgenas.cli.bench_cmd import plot_regret, run_benchmark
from edgenas.estimate.tabular import NB201Evaluator
from edgenas.search.strategies import list_strategies

QUERIES, SEEDS = 150, 50
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_12epoch.csv"


def main() -> int:
    torch.set_num_threads(1)
    console = Console()
    evaluator = NB201Evaluator("cifar10", DATA if DATA.is_file() else None)
    names = [n for n in list_strategies() if n != "grid"]  # grid walks the table in index order
    bench = run_benchmark(names, evaluator, QUERIES, SEEDS)
    title = f"NAS-Bench-201 cifar10 (12-epoch val), {QUERIES} queries, {SEEDS} seeds"
    console.print(bench.table(title))
    png = Path(__file__).with_name("nb201_regret.png")
    plot_regret(bench.regret, png, title)
    console.print(f"regret curves: {png}")

    final = {n: float(r[:, -1].mean()) for n, r in bench.regret.items()}
    best = min(final, key=final.__getitem__)
    rand = final["random"]
    checks = [
        (f"re regret @{QUERIES} <= 0.30", final["re"], final["re"] <= 0.30),
        (f"best ({best}) regret @{QUERIES} <= 0.15", final[best], final[best] <= 0.15),
    ]
    for label, value, ok in checks:
        ratio = rand / max(value, 1e-9)
        verdict = "PASS" if ok else "FAIL"
        console.print(f"{label}: {value:.3f} ({ratio:.1f}x below random's {rand:.3f}) {verdict}")
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
