"""Once-for-All supernet on digits: how well inherited accuracy ranks archs, and how much faster.

Trains a small supernet of the ``mcunet`` space (widths fixed at 0.5, resolutions 16 and 24,
three stages of 2-3 blocks) by progressive shrinking, then for N random archs compares the
supernet's accuracy (inherited weights, BN recalibrated) with the accuracy of the same arch
trained from scratch for a few epochs (``--dataset fashion-mnist --data-dir D --train-size N``
for a harder task). Prints Spearman's rank correlation between the two,
the seconds per arch of each estimator and their ratio. The ground truth is the test accuracy
after scratch training, averaged over seeds (the test split is fixed; 359 digits). Printed
beside it: MACs' own rank correlation (the baseline a useful estimator must beat) and the
correlation between two scratch seeds (how much of the ranking is noise).

    python benchmarks/bench_supernet.py [--archs 20] [--epochs 6] [--scratch-epochs 5] [--scratch-seeds 2]
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
    parser.add_argument("--epochs", type=int, default=6, help="supernet epochs per shrinking phase")
    parser.add_argument("--full-epochs", type=int, default=6, help="supernet epochs of the full network")
    parser.add_argument("--scratch-epochs", type=int, default=5)
    parser.add_argument("--scratch-seeds", type=int, default=2, help="scratch runs per arch (noise ceiling)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train-size", type=int, default=None, help="training images (subset)")
    parser.add_argument("--json", type=str, default=None, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    setup = SupernetSetup("mcunet", SPACE_OPTIONS, dataset=args.dataset, data_dir=args.data_dir,
                          train_size=args.train_size, seed=args.seed)
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
        scratch = {seed: TrainEvaluator("mcunet", args.dataset, args.data_dir, SPACE_OPTIONS,
                                        {"epochs": args.scratch_epochs, "batch_size": 64, "seed": seed},
                                        train_size=args.train_size)
                   for seed in range(args.seed, args.seed + args.scratch_seeds)}
        for r in space.resolutions:  # load the data once for each, outside the timings
            inherit.dataset_for(r)
            for evaluator in scratch.values():
                evaluator.dataset_for(3, r)
        extremes = {name: inherit(a)["val_accuracy"] for name, a in (("largest", net.max_arch()),
                                                                     ("smallest", net.min_arch()))}
        rows = []
        print(f"\n{'arch':58s} {'MACs':>9s} {'supernet val/test':>17s} {'s':>5s}  scratch test per seed, s")
        for a in archs:
            t = time.perf_counter()
            inherited = inherit(a)
            t_inherit = time.perf_counter() - t
            trained, t_scratch = [], []
            for seed, evaluator in scratch.items():
                torch.manual_seed(seed)  # the weight init
                t = time.perf_counter()
                trained.append(evaluator(a)["test_accuracy"])
                t_scratch.append(time.perf_counter() - t)
            macs = space.fast_cost(a.values, 10).macs
            rows.append({"arch": space.to_string(a), "macs": macs, "supernet_val": inherited["val_accuracy"],
                         "supernet_test": inherited["test_accuracy"], "scratch_test": trained,
                         "supernet_seconds": t_inherit, "scratch_seconds": float(np.mean(t_scratch))})
            print(f"{rows[-1]['arch']:58s} {macs:9,d} {inherited['val_accuracy']:7.2f}/"
                  f"{inherited['test_accuracy']:6.2f}% {t_inherit:5.2f}  "
                  + " ".join(f"{acc:6.2f}%" for acc in trained) + f"  {np.mean(t_scratch):4.1f}", flush=True)

    truth = np.array([np.mean(r["scratch_test"]) for r in rows])  # the fixed test split, mean over seeds
    sup_val = np.array([r["supernet_val"] for r in rows])
    sup_test = np.array([r["supernet_test"] for r in rows])
    macs = np.array([r["macs"] for r in rows])
    rho = float(spearmanr(sup_val, truth).statistic)
    rho_test = float(spearmanr(sup_test, truth).statistic)
    tau = float(kendalltau(sup_val, truth).statistic)
    rho_macs = float(spearmanr(macs, truth).statistic)
    runs = np.array([r["scratch_test"] for r in rows])
    rho_seeds = float(spearmanr(runs[:, 0], runs[:, 1]).statistic) if runs.shape[1] > 1 else float("nan")
    s_inherit = float(np.mean([r["supernet_seconds"] for r in rows]))
    s_scratch = float(np.mean([r["scratch_seconds"] for r in rows]))
    print(f"\nsupernet training: {supernet_seconds:.0f} s; largest subnet {extremes['largest']:.2f}% val, "
          f"smallest {extremes['smallest']:.2f}% val")
    print(f"ground truth: test accuracy after {args.scratch_epochs} epochs from scratch, mean of "
          f"{args.scratch_seeds} seed(s); {len(rows)} archs")
    print(f"Spearman vs ground truth: supernet val {rho:.3f} (Kendall {tau:.3f}), "
          f"supernet test {rho_test:.3f}, MACs {rho_macs:.3f}; "
          f"scratch seed vs seed (noise ceiling) {rho_seeds:.3f}")
    print(f"mean accuracy: supernet val {sup_val.mean():.2f}%, scratch test {truth.mean():.2f}%")
    print(f"seconds per arch: supernet {s_inherit:.2f}, scratch {s_scratch:.1f} (one seed); "
          f"speed ratio {s_scratch / s_inherit:.0f}x; supernet training pays off after "
          f"{supernet_seconds / max(1e-9, s_scratch - s_inherit):.0f} archs")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": rows, "spearman": rho, "spearman_test": rho_test, "kendall": tau,
            "spearman_macs": rho_macs,
            "spearman_scratch_seeds": rho_seeds, "supernet_seconds_per_arch": s_inherit,
            "scratch_seconds_per_arch": s_scratch, "supernet_train_seconds": supernet_seconds, **extremes,
        }, indent=2))

if __name__ == "__main__":
    main()
