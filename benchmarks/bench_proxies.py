"""Zero-cost proxies on NAS-Bench-201 (issue 5): our scores vs NASLib's on the same 491 archs.

For every proxy: Spearman's rho with 200-epoch val accuracy for our scores and for NASLib's
published scores of the same archs (the baseline, from the same file), their ratio, and the
rank agreement between the two. Targets: synflow rho >= 0.70 and agreement >= 0.95.

    python benchmarks/bench_proxies.py [--n 491] [--proxies all] [--batch-data digits] [--batch-size 64]

The data proxies need a forward/backward pass of a 64-image batch per arch (grasp: three);
all ten proxies over 491 archs take about an hour on two idle cores, synflow alone a few minutes.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import torch

from edgenas.estimate.proxies import parse_proxy_names
from edgenas.estimate.proxies.nb201 import evaluate_nb201

ZC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201" / "zc_nasbench201.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=491)
    ap.add_argument("--proxies", default="all")
    ap.add_argument("--batch-data", default="digits")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=ZC)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    names = parse_proxy_names(args.proxies)
    start = time.perf_counter()

    def progress(i: int) -> None:
        if i % 25 == 0 or i == args.n:
            print(f"  {i} archs, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)

    rows = evaluate_nb201(names, n=args.n, data=args.data, seed=args.seed, batch_data=args.batch_data,
                          batch_size=args.batch_size, on_arch=progress)
    print(f"NAS-Bench-201 cifar10, {rows[0].n} archs, batch {args.batch_size} {args.batch_data} images, "
          f"seed {args.seed}")
    head = ("proxy", "rho ours", "rho NASLib", "ours/NASLib", "agreement", "s/arch")
    print(f"{head[0]:<10} {head[1]:>9} {head[2]:>10} {head[3]:>11} {head[4]:>9} {head[5]:>7}")
    for r in rows:
        ratio = r.spearman_ours / r.spearman_naslib if r.spearman_naslib else math.nan
        print(f"{r.proxy:<10} {r.spearman_ours:>9.3f} {r.spearman_naslib:>10.3f} {ratio:>11.2f} "
              f"{r.agreement:>9.3f} {r.seconds_per_arch:>7.3f}")
    syn = next((r for r in rows if r.proxy == "synflow"), None)
    if syn is not None:
        ok = syn.spearman_ours >= 0.70 and syn.agreement >= 0.95
        print(f"synflow target (rho >= 0.70, agreement >= 0.95): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
