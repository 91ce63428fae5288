"""Accuracy predictors on NAS-Bench-201 (issue 5): Kendall tau on 2,000 held-out archs.

Trains on 200 and 1,000 archs of the 12-epoch table (cifar10-val), averaged over seeds, and
prints the scikit-learn baselines on the plain one-hot encoding measured in the same run
(GradientBoostingRegressor with defaults, MLPRegressor 3 x 400). Targets for our best
predictor: tau >= 0.60 at 200 archs and >= 0.75 at 1,000.

    python benchmarks/bench_predictors.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from edgenas.estimate.predictors import (
    Predictor,
    encode,
    evaluate_predictor,
    load_nb201_table,
    make_predictor,
)
from edgenas.spaces import get_space

TABLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201" / "nb201_12epoch.csv"
SIZES = (200, 1000)


class SklearnBaseline(Predictor):
    """An sklearn regressor behind the predictor interface (baselines only)."""

    def __init__(self, model) -> None:
        self.model = model

    def fit(self, X: np.ndarray, y: np.ndarray) -> SklearnBaseline:
        self.model.fit(X, y)
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict(X)


def baselines() -> dict[str, tuple[str, Callable[[int], Predictor]]]:
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.neural_network import MLPRegressor

    return {
        "sklearn GBM (baseline)": (
            "onehot", lambda s: SklearnBaseline(GradientBoostingRegressor(random_state=s))),
        "sklearn MLP 3x400 (baseline)": ("onehot", lambda s: SklearnBaseline(
            MLPRegressor(hidden_layer_sizes=(400, 400, 400), max_iter=500, random_state=s))),
    }


def ours() -> dict[str, tuple[str, Callable[[int], Predictor]]]:
    return {
        "gbm, onehot": ("onehot", lambda s: make_predictor("gbm", seed=s)),
        "gbm, nb201": ("nb201", lambda s: make_predictor("gbm", seed=s)),
        "mlp, nb201": ("nb201", lambda s: make_predictor("mlp", seed=s)),
        "mlp+rank, nb201": ("nb201", lambda s: make_predictor("mlp", seed=s, rank_weight=1.0)),
        "gbm_ensemble x5, nb201": ("nb201", lambda s: make_predictor("gbm_ensemble", seed=s)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=TABLE)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    space = get_space("nb201")
    archs, y = load_nb201_table(args.data)
    X = {enc: encode(space, archs, enc) for enc in ("onehot", "nb201")}
    print(f"NAS-Bench-201 cifar10-val (12 epochs): Kendall tau on 2,000 held-out archs, "
          f"mean ± std over {args.seeds} seeds")
    print(f"{'predictor':<30} {'200 archs':>22} {'1,000 archs':>22} {'fit s':>7}")
    base_tau: dict[int, float] = {}
    for label, (enc, make) in {**baselines(), **ours()}.items():
        cells, t0 = [], time.perf_counter()
        for size in SIZES:
            taus = [evaluate_predictor(make, X[enc], y, size, seed) for seed in range(args.seeds)]
            cells.append(f"{np.mean(taus):.3f} ± {np.std(taus):.3f}")
            if label.startswith("sklearn GBM"):
                base_tau[size] = float(np.mean(taus))
            elif label == "gbm, nb201":
                ratio = np.mean(taus) / base_tau[size]
                cells[-1] += f" ({ratio:.2f}x)"
        secs = (time.perf_counter() - t0) / (len(SIZES) * args.seeds)
        print(f"{label:<30} {cells[0]:>22} {cells[1]:>22} {secs:>7.1f}", flush=True)
    print("(N.NNx: tau of our gbm on the nb201 encoding over the sklearn GBM baseline, same splits)")


if __name__ == "__main__":
    main()
