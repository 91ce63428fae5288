"""Predictor-guided search, BANANAS-style (White et al. 2021).

After ``init`` random archs, an ensemble of small MLPs is fitted on the one-hot encodings of
every told arch; mutations of the best told archs (plus a few random archs) are scored by an
acquisition function of the ensemble's mean and spread, and the best ``batch`` new ones are
asked before the ensemble is refitted. The default ensemble is in this module (a batched
torch MLP, one bootstrap resample per member, warm-started between fits) so that it stays
cheap enough to refit every few asks; ``predictor="gbm_ensemble"`` (or any ensemble of
:mod:`edgenas.estimate.predictors`) swaps in another, and ``encoding`` picks a registered
encoding of that module (e.g. ``nb201``) instead of the space's one-hot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from edgenas.errors import EdgenasError
from edgenas.search.strategies.base import Objective, Strategy, register_strategy
from edgenas.search.strategies.reinforce import single_thread
from edgenas.spaces.base import Arch, SearchSpace

Acquisition = Literal["ucb", "ei", "its", "mean"]


class MLPEnsemble:
    """``members`` MLPs trained at once as batched matrices; predicts mean and std over members.

    Each fit trains every member on its own bootstrap resample. A refit starts from the
    previous weights (the data only grew by a few points) and trains ``refit_epochs``
    instead of ``epochs``, which keeps a refit every few asks cheap.
    """

    def __init__(self, members: int = 5, hidden: int = 64, epochs: int = 100, refit_epochs: int = 30,
                 lr: float = 0.01, weight_decay: float = 1e-4):
        self.members, self.hidden, self.lr, self.wd = members, hidden, lr, weight_decay
        self.epochs, self.refit_epochs = epochs, refit_epochs
        self.params: list[torch.Tensor] = []

    def fit(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> MLPEnsemble:
        n, d = x.shape
        self.mu, self.sigma = float(y.mean()), float(y.std()) or 1.0
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        boot = torch.from_numpy(rng.integers(n, size=(self.members, n)))  # one bootstrap per member
        xs = torch.from_numpy(x.astype(np.float32))[boot]  # (M, n, d)
        ys = torch.from_numpy(((y - self.mu) / self.sigma).astype(np.float32))[boot]  # (M, n)
        m, h = self.members, self.hidden

        def init(*shape: int, fan_in: int) -> torch.Tensor:
            bound = 1 / math.sqrt(fan_in)
            return ((torch.rand(*shape, generator=g) * 2 - 1) * bound).requires_grad_()

        epochs = self.refit_epochs
        if not self.params or self.params[0].shape[1] != d:
            epochs = self.epochs
            self.params = [init(m, d, h, fan_in=d), init(m, 1, h, fan_in=d), init(m, h, h, fan_in=h),
                           init(m, 1, h, fan_in=h), init(m, h, 1, fan_in=h), init(m, 1, 1, fan_in=h)]
        opt = torch.optim.Adam(self.params, lr=self.lr, weight_decay=self.wd, foreach=True)
        with single_thread():
            for _ in range(epochs):
                opt.zero_grad()
                loss = ((self._forward(xs)[..., 0] - ys) ** 2).mean()
                loss.backward()
                opt.step()
        return self

    def _forward(self, xs: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2, w3, b3 = self.params
        z = torch.relu(torch.bmm(xs, w1) + b1)
        z = torch.relu(torch.bmm(z, w2) + b2)
        return torch.bmm(z, w3) + b3

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) over members, in the units of ``y``; each (len(x),)."""
        xs = torch.from_numpy(x.astype(np.float32)).expand(self.members, *x.shape)
        with torch.no_grad(), single_thread():
            out = self._forward(xs)[..., 0].numpy() * self.sigma + self.mu  # (M, N)
        return out.mean(axis=0), out.std(axis=0)


@register_strategy("predictor")
class PredictorGuided(Strategy):
    def __init__(
        self,
        space: SearchSpace,
        objectives: Sequence[Objective],
        seed: int = 0,
        *,
        init: int = 10,
        batch: int = 5,
        candidates: int = 200,
        parents: int = 10,
        random_fraction: float = 0.1,
        acquisition: Acquisition = "its",
        kappa: float = 0.5,
        members: int = 5,
        epochs: int = 100,
        refit_epochs: int = 30,
        predictor: str | None = None,
        encoding: str = "onehot",
    ):
        super().__init__(space, objectives, seed)
        if acquisition not in ("ucb", "ei", "its", "mean"):
            raise EdgenasError(f"unknown acquisition {acquisition!r}; choose ucb, ei, its or mean")
        if init < 2 or batch < 1 or candidates < 1 or parents < 1 or not 0 <= random_fraction <= 1:
            raise EdgenasError("predictor needs init >= 2, batch >= 1, candidates >= 1, parents >= 1, "
                               "0 <= random_fraction <= 1")
        self.init, self.batch, self.n_candidates, self.n_parents = init, batch, candidates, parents
        self.random_fraction, self.acquisition, self.kappa = random_fraction, acquisition, kappa
        self.model = MLPEnsemble(members=members, epochs=epochs, refit_epochs=refit_epochs)
        self.predictor, self.encoding = predictor, encoding
        if predictor is not None or encoding != "onehot":
            from edgenas.estimate import predictors

            if encoding not in predictors.ENCODINGS:
                raise EdgenasError(f"unknown encoding {encoding!r}; known: {', '.join(predictors.ENCODINGS)}")
            if predictor is not None and predictor not in predictors.PREDICTORS:
                raise EdgenasError(
                    f"unknown predictor {predictor!r}; known: {', '.join(predictors.list_predictors())}"
                )
        self._queue: list[Arch] = []
        self._asks = 0

    def ask(self) -> Arch:
        self._asks += 1
        told = list(self.told())
        if self._asks <= self.init or len(told) < 2:
            return self._asked(self.fresh(lambda: self.space.sample(self.rng)))
        while self._queue:
            arch = self._queue.pop(0)
            if self.is_new(arch):
                return self._asked(arch)
        self._queue = self._propose(told)
        if not self._queue:
            return self._asked(self.fresh(lambda: self.space.sample(self.rng)))
        return self._asked(self._queue.pop(0))

    def _candidates(self, told: list[tuple[Arch, float]]) -> list[Arch]:
        """New mutations (1 or 2 steps) of the best told archs, plus some random new archs."""
        ranked = [a for a, _ in sorted(told, key=lambda m: -m[1])[: self.n_parents]]
        out: dict[str, Arch] = {}
        n_random = round(self.random_fraction * self.n_candidates)
        tries = 0
        while len(out) < self.n_candidates - n_random and tries < 20 * self.n_candidates:
            tries += 1
            arch = ranked[int(self.rng.integers(len(ranked)))]
            for _ in range(1 + int(self.rng.integers(2))):
                arch = self.space.mutate(arch, self.rng)
            if self.is_new(arch):
                out.setdefault(arch.key(), arch)
        tries = 0
        while len(out) < self.n_candidates and tries < 20 * self.n_candidates and self._space_left():
            tries += 1
            arch = self.space.sample(self.rng)
            if self.is_new(arch):
                out.setdefault(arch.key(), arch)
        return list(out.values())

    def _encode(self, archs: list[Arch]) -> np.ndarray:
        if self.encoding == "onehot":
            return np.stack([self.space.encode(a) for a in archs])
        from edgenas.estimate.predictors import encode

        return encode(self.space, archs, self.encoding)

    def _fit_predict(self, x: np.ndarray, y: np.ndarray, xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.predictor is None:
            self.model.fit(x, y, self.rng)
            return self.model.predict(xc)
        from edgenas.estimate.predictors import make_predictor

        seed = int(self.rng.integers(1_000_000))  # small: ensembles derive seed * 1000 + i
        model = make_predictor(self.predictor, seed=seed).fit(x, y)
        if not model.has_std:
            raise EdgenasError(f"predictor {self.predictor} gives no uncertainty; use an ensemble predictor")
        return model.predict(xc, return_std=True)

    def _propose(self, told: list[tuple[Arch, float]]) -> list[Arch]:
        cands = self._candidates(told)
        if not cands:
            return []
        y = np.array([s for _, s in told])
        mean, std = self._fit_predict(self._encode([a for a, _ in told]), y, self._encode(cands))
        order = np.argsort(-self._acquire(mean, std, float(y.max())), kind="stable")
        return [cands[int(i)] for i in order[: self.batch]]

    def _acquire(self, mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
        if self.acquisition == "mean":
            return mean
        if self.acquisition == "ucb":
            return mean + self.kappa * std
        if self.acquisition == "its":  # independent Thompson sampling
            return mean + std * self.rng.standard_normal(len(mean))
        from scipy.stats import norm

        s = np.maximum(std, 1e-9)
        z = (mean - best) / s
        return (mean - best) * norm.cdf(z) + s * norm.pdf(z)

    def tell(self, arch: Arch, values: dict[str, float] | None) -> None:
        self._record(arch, values)
