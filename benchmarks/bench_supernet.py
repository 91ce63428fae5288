"""Once-for-All supernet on digits: how well inherited accuracy ranks archs, and how much faster.

Trains a small supernet of the ``mcunet`` space (widths fixed at 0.5, resolutions 16 and 24,
three stages of 2-3 blocks) by progressive shrinking, then for N random archs compares the
supernet's accuracy (inherited weights, BN recalibrated) with the accuracy of the same arch
trained from scratch for a few epochs. Prints Spearman's rank correlation between the two,
the seconds per arch of each estimator and their ratio. MACs' own rank correlation with the
scratch accuracy is printed as the baseline a useful estimator must beat.

    python benchmarks/bench_supernet.py [--archs 20] [--epochs 3] [--scratch-epochs 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from edgenas.estimate.evaluators import TrainEvaluator
from edgenas.supernet.checkpoint import SupernetSetup
from edgenas.supernet.evaluator import SupernetEvaluator
from edgenas.supernet.shrink import EpochRecord, ShrinkConfig, train_supernet

SPACE_OPTIONS = {
    "resolutions": [16, 24], "widths": [0.5], "stem": 16, "first": 8,
    "stages": [[24, 2, [2, 3]], [40, 2, [2, 3]], [80, 2, [2, 3]]],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3, help="supernet epochs per shrinking phase")
    parser.add_argument("--full-epochs", type=int, default=6, help="supernet epochs of the full network")
    parser.add_argument("--scratch-epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    setup = SupernetSetup("mcunet", SPACE_OPTIONS, seed=args.seed)
    torch.manual_seed(args.seed)
    net = setup.build()
    space = net.space
    data = {r: setup.dataset_at(r) for r in space.resolutions}
    config = ShrinkConfig(epochs=args.epochs, full_epochs=args.full_epochs, seed=args.seed)

    def show(r: EpochRecord) -> None:
        print(f"  {r.phase:6s} {r.epoch + 1}/{r.epochs} loss {r.loss:.3f} largest {100 * r.max_val:.1f}% "
              f"smallest {100 * r.min_val:.1f}% ({r.seconds:.1f} s)", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "supernet.pt"
        t0 = time.perf_counter()
        print(f"training the supernet ({space.size():,} subnets), phases {' -> '.join(config.phases)}")
        train_supernet(net, data, config, setup, checkpoint=ckpt, on_epoch=show)
        supernet_seconds = time.perf_counter() - t0

        rng = np.random.default_rng(args.seed)
        archs, seen = [], set()
        while len(archs) < args.archs:
            a = space.sample(rng)
            if a.id not in seen:
                seen.add(a.id)
                archs.append(a)
        inherit = SupernetEvaluator(str(ckpt), space="mcunet", bn_batches=10)
        scratch = TrainEvaluator("mcunet", space_options=SPACE_OPTIONS,
                                 train={"epochs": args.scratch_epochs, "batch_size": 64, "seed": args.seed})
        for r in space.resolutions:  # load the data once for each, outside the timings
            inherit.dataset_for(r)
            scratch.dataset_for(3, r)
        extremes = {name: inherit(a)["val_accuracy"] for name, a in (("largest", net.max_arch()),
                                                                     ("smallest", net.min_arch()))}
        rows = []
        print(f"\n{'arch':58s} {'MACs':>9s} {'supernet':>9s} {'s':>5s} {'scratch':>8s} {'s':>5s}")
        for a in archs:
            t = time.perf_counter()
            inherited = inherit(a)["val_accuracy"]
            t_inherit = time.perf_counter() - t
            t = time.perf_counter()
            trained = scratch(a)["val_accuracy"]
            t_scratch = time.perf_counter() - t
            macs = space.fast_cost(a.values, 10).macs
            rows.append({"arch": space.to_string(a), "macs": macs, "supernet": inherited, "scratch": trained,
                         "supernet_seconds": t_inherit, "scratch_seconds": t_scratch})
            print(f"{rows[-1]['arch']:58s} {macs:9,d} {inherited:8.2f}% {t_inherit:5.2f} {trained:7.2f}% "
                  f"{t_scratch:5.1f}", flush=True)

    sup = np.array([r["supernet"] for r in rows])
    scr = np.array([r["scratch"] for r in rows])
    macs = np.array([r["macs"] for r in rows])
    rho = float(spearmanr(sup, scr).statistic)
    tau = float(kendalltau(sup, scr).statistic)
    rho_macs = float(spearmanr(macs, scr).statistic)
    s_inherit = float(np.mean([r["supernet_seconds"] for r in rows]))
    s_scratch = float(np.mean([r["scratch_seconds"] for r in rows]))
    print(f"\nsupernet training: {supernet_seconds:.0f} s; largest subnet {extremes['largest']:.2f}% val, "
          f"smallest {extremes['smallest']:.2f}% val")
    print(f"supernet vs scratch ({args.scratch_epochs} epochs), {len(rows)} archs: Spearman {rho:.3f}, "
          f"Kendall {tau:.3f} (MACs vs scratch: Spearman {rho_macs:.3f})")
    print(f"mean accuracy: supernet {sup.mean():.2f}%, scratch {scr.mean():.2f}%")
    print(f"seconds per arch: supernet {s_inherit:.2f}, scratch {s_scratch:.1f}; "
          f"speed ratio {s_scratch / s_inherit:.0f}x; supernet training pays off after "
          f"{supernet_seconds / max(1e-9, s_scratch - s_inherit):.0f} archs")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": rows, "spearman": rho, "kendall": tau, "spearman_macs": rho_macs,
            "supernet_seconds_per_arch": s_inherit, "scratch_seconds_per_arch": s_scratch,
            "supernet_train_seconds": supernet_seconds, **extremes,
        }, indent=2))


if __name__ == "__main__":
    main()
