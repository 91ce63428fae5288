"""Accuracy predictors: learn accuracy from an arch encoding, rank unseen archs, give uncertainty.

One interface (:class:`Predictor`: ``fit(X, y)``, ``predict(X)``, ``predict(X, return_std=True)``
for the ensembles), a registry of predictors (``make_predictor("mlp", seed=0)``) and a
registry of encodings (``encode(space, archs, "nb201")``). Targets are standardised inside
each predictor, so accuracies in percent or in [0, 1] work alike.
"""

from __future__ import annotations

import csv
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch, SearchSpace


class Predictor(ABC):
    """Regressor of accuracy from features; ``predict`` is the mean, ensembles add a std."""

    name: ClassVar[str] = "?"
    has_std: ClassVar[bool] = False

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> Predictor: ...

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Predicted accuracy of each row of ``X``; with ``return_std``, (mean, std)."""
        X = _check_X(X)
        if not return_std:
            return self._predict(X)
        if not self.has_std:
            raise EdgenasError(f"predictor {self.name} gives no uncertainty; use an ensemble predictor")
        return self._predict_dist(X)

    def _predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


PredictorFactory = Callable[..., Predictor]
PREDICTORS: dict[str, PredictorFactory] = {}


def register_predictor(name: str) -> Callable[[PredictorFactory], PredictorFactory]:
    def deco(factory: PredictorFactory) -> PredictorFactory:
        if name in PREDICTORS:
            raise ValueError(f"predictor {name!r} registered twice")
        PREDICTORS[name] = factory
        return factory

    return deco


def make_predictor(name: str, seed: int = 0, **options: Any) -> Predictor:
    """A fresh registered predictor; ``seed`` fixes everything random in its training."""
    if name not in PREDICTORS:
        raise EdgenasError(f"unknown predictor {name!r}; known predictors: {', '.join(PREDICTORS)}")
    return PREDICTORS[name](seed=seed, **options)


def list_predictors() -> list[str]:
    return list(PREDICTORS)


def _check_X(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise EdgenasError(f"predictor inputs must be a 2-D array (archs x features), got shape {X.shape}")
    return X


def _check_xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = _check_X(X), np.asarray(y, dtype=np.float64).ravel()
    if len(X) != len(y) or len(y) < 2:
        raise EdgenasError(
            f"need as many targets as archs (at least 2); got {len(X)} archs and {len(y)} targets"
        )
    return X, y


# --- predictors ----------------------------------------------------------------------------------
class _Standardised:
    """Target scaling shared by the predictors: fit on z-scores, predict in the original unit."""

    def _scale(self, y: np.ndarray) -> np.ndarray:
        self._mu, self._sd = float(y.mean()), float(y.std()) or 1.0
        return (y - self._mu) / self._sd

    def _unscale(self, z: np.ndarray) -> np.ndarray:
        return z * self._sd + self._mu


@register_predictor("mlp")
class MLPPredictor(_Standardised, Predictor):
    """Once-for-All's accuracy predictor: 3 hidden layers of 400 ReLU units, trained with Adam.

    ``rank_weight`` > 0 adds a pairwise hinge ranking loss over the mini-batch to the MSE,
    which helps the ranking (Kendall tau) with few training archs.
    """

    name = "mlp"

    def __init__(self, seed: int = 0, hidden: Sequence[int] = (400, 400, 400), epochs: int = 300,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 64,
                 rank_weight: float = 0.0, margin: float = 0.1) -> None:
        self.seed, self.hidden, self.epochs, self.lr = seed, tuple(hidden), epochs, lr
        self.weight_decay, self.batch_size = weight_decay, batch_size
        self.rank_weight, self.margin = rank_weight, margin
        self.net: nn.Module | None = None

    def _build(self, n_in: int) -> nn.Module:
        layers: list[nn.Module] = []
        for width in self.hidden:
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        layers.append(nn.Linear(n_in, 1))
        return nn.Sequential(*layers)

    def fit(self, X: np.ndarray, y: np.ndarray) -> MLPPredictor:
        X, y = _check_xy(X, y)
        xt = torch.from_numpy(X)
        zt = torch.from_numpy(self._scale(y)).float()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = self._build(X.shape[1])
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.epochs)
            gen = torch.Generator().manual_seed(self.seed)
            n = len(y)
            for _ in range(self.epochs):
                for idx in torch.randperm(n, generator=gen).split(self.batch_size):
                    pred = net(xt[idx]).squeeze(1)
                    loss = nn.functional.mse_loss(pred, zt[idx])
                    if self.rank_weight > 0 and len(idx) > 1:
                        loss = loss + self.rank_weight * pairwise_hinge(pred, zt[idx], self.margin)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                sched.step()
        self.net = net.eval()
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        if self.net is None:
            raise EdgenasError("predictor is not fitted; call fit(X, y) first")
        with torch.no_grad():
            z = self.net(torch.from_numpy(X)).squeeze(1).double().numpy()
        return self._unscale(z)


def pairwise_hinge(pred: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean hinge loss over ordered pairs: a better arch must score ``margin`` above a worse one."""
    sign = torch.sign(target[:, None] - target[None, :])
    diff = pred[:, None] - pred[None, :]
    mask = sign > 0
    return torch.relu(margin - diff[mask]).mean() if mask.any() else pred.sum() * 0


@register_predictor("gbm")
class GBMPredictor(_Standardised, Predictor):
    """scikit-learn gradient boosting, tuned for small NAS training sets (shallow, slow, subsampled)."""

    name = "gbm"

    def __init__(self, seed: int = 0, n_estimators: int = 500, learning_rate: float = 0.03,
                 max_depth: int = 4, subsample: float = 0.8, min_samples_leaf: int = 3) -> None:
        from sklearn.ensemble import GradientBoostingRegressor

        self.model = GradientBoostingRegressor(
            n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth,
            subsample=subsample, min_samples_leaf=min_samples_leaf, random_state=seed,
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> GBMPredictor:
        X, y = _check_xy(X, y)
        self.model.fit(X, self._scale(y))
        return self

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._unscale(self.model.predict(X))


class EnsemblePredictor(Predictor):
    """Members trained with different seeds; mean prediction, their spread as the uncertainty."""

    has_std = True

    def __init__(self, members: Sequence[Predictor], name: str = "ensemble") -> None:
        if not members:
            raise EdgenasError("an ensemble needs at least one member")
        self.members = list(members)
        self.name = name

    def fit(self, X: np.ndarray, y: np.ndarray) -> EnsemblePredictor:
        for m in self.members:
            m.fit(X, y)
        return self

    def _all(self, X: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(X) for m in self.members])

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return self._all(X).mean(0)

    def _predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = self._all(X)
        return preds.mean(0), preds.std(0)


@register_predictor("mlp_ensemble")
def mlp_ensemble(seed: int = 0, members: int = 5, **options: Any) -> EnsemblePredictor:
    """``members`` MLPs (seeds seed*1000 + i)."""
    return EnsemblePredictor(
        [MLPPredictor(seed=seed * 1000 + i, **options) for i in range(members)], "mlp_ensemble"
    )


@register_predictor("gbm_ensemble")
def gbm_ensemble(seed: int = 0, members: int = 5, **options: Any) -> EnsemblePredictor:
    """``members`` subsampled gradient-boosting models (seeds seed*1000 + i)."""
    return EnsemblePredictor(
        [GBMPredictor(seed=seed * 1000 + i, **options) for i in range(members)], "gbm_ensemble"
    )


# --- encodings -----------------------------------------------------------------------------------
Encoding = Callable[[SearchSpace, Arch], np.ndarray]
ENCODINGS: dict[str, Encoding] = {}


def register_encoding(name: str) -> Callable[[Encoding], Encoding]:
    def deco(fn: Encoding) -> Encoding:
        ENCODINGS[name] = fn
        return fn

    return deco


@register_encoding("onehot")
def onehot(space: SearchSpace, arch: Arch) -> np.ndarray:
    """The space's own one-hot encoding of every dimension."""
    return space.encode(arch)


def encode(space: SearchSpace, archs: Sequence[Arch], encoding: str = "onehot") -> np.ndarray:
    """Feature matrix (archs x features) of ``archs`` under a registered encoding."""
    if encoding not in ENCODINGS:
        raise EdgenasError(f"unknown encoding {encoding!r}; known encodings: {', '.join(ENCODINGS)}")
    fn = ENCODINGS[encoding]
    return np.stack([np.asarray(fn(space, a), dtype=np.float32) for a in archs])


# NB201: an edge matters only if it lies on a route from the input node 0 to the output node 3
# with no 'none' op; a cell with no such route outputs zeros whatever its other ops are.
_NB201_ROUTES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0, 3),), ((0, 1), (1, 3)), ((0, 2), (2, 3)), ((0, 1), (1, 2), (2, 3)),
)


def nb201_live_routes(ops: dict[tuple[int, int], str]) -> list[bool]:
    """Whether each input->output route of the cell is free of 'none' ops."""
    return [all(ops[e] != "none" for e in route) for route in _NB201_ROUTES]


@register_encoding("nb201")
def nb201_features(space: SearchSpace, arch: Arch) -> np.ndarray:
    """NB201 cell features: one-hot of the ops that reach the output, per-route op counts, op counts.

    Edges on no live route are encoded as 'none' (they change nothing), so equivalent cells
    share most features; then, per route, whether it is live and how many 3x3 convs, 1x1
    convs, pools it has and whether it is all skips; the count of each live op; and whether
    the cell is disconnected.
    """
    from edgenas.spaces.nb201 import EDGES, OPS

    if not hasattr(space, "cell_ops"):
        raise EdgenasError(f"encoding nb201 needs the nb201 space, not {space.name}; use --encoding onehot")
    ops = space.cell_ops(arch)
    live_routes = nb201_live_routes(ops)
    live = {e for route, ok in zip(_NB201_ROUTES, live_routes, strict=True) if ok for e in route}
    eff = {e: (ops[e] if e in live else "none") for e in EDGES}
    hot = np.zeros((len(EDGES), len(OPS)), dtype=np.float32)
    for k, e in enumerate(EDGES):
        hot[k, OPS.index(eff[e])] = 1.0
    routes: list[float] = []
    for route, ok in zip(_NB201_ROUTES, live_routes, strict=True):
        kinds = [eff[e] for e in route]
        routes += [ok, ok * kinds.count("nor_conv_3x3"), ok * kinds.count("nor_conv_1x1"),
                   ok * kinds.count("avg_pool_3x3"), ok * all(k == "skip_connect" for k in kinds)]
    counts = [sum(eff[e] == op for e in EDGES) for op in OPS]
    return np.concatenate([hot.ravel(), np.array([*routes, *counts, not any(live_routes)], np.float32)])


# --- evaluation on a tabular benchmark -----------------------------------------------------------
def load_nb201_table(path: str | Path, column: str = "cifar10-val") -> tuple[list[Arch], np.ndarray]:
    """Every arch of the NAS-Bench-201 CSV (``cellstr`` + accuracy columns) and its ``column``."""
    from edgenas.spaces import get_space

    path = Path(path)
    if not path.is_file():
        raise EdgenasError(f"NAS-Bench-201 table not found at {path}; give the path of nb201_12epoch.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "cellstr" not in rows[0] or column not in rows[0]:
        cols = ", ".join(rows[0]) if rows else "none"
        raise EdgenasError(f"{path} needs columns cellstr and {column}; it has: {cols}")
    space = get_space("nb201")
    return [space.from_string(r["cellstr"]) for r in rows], np.array([float(r[column]) for r in rows])


def split_indices(n: int, train_size: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint (train, test) index sets: the test set first, training archs after it."""
    if train_size + test_size > n:
        raise EdgenasError(f"train {train_size:,} + test {test_size:,} archs exceed the {n:,} available")
    perm = np.random.default_rng(seed).permutation(n)
    return perm[test_size : test_size + train_size], perm[:test_size]


def kendall_tau(pred: np.ndarray, truth: np.ndarray) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(pred, truth).statistic)


def evaluate_predictor(
    make: Callable[[int], Predictor], X: np.ndarray, y: np.ndarray, train_size: int, seed: int,
    test_size: int = 2000,
) -> float:
    """Kendall tau on ``test_size`` held-out archs of a predictor fitted on ``train_size`` others."""
    train, test = split_indices(len(y), train_size, test_size, seed)
    model = make(seed).fit(X[train], y[train])
    return kendall_tau(model.predict(X[test]), y[test])
