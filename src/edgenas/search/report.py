"""What a finished search writes: every trial (CSV), the Pareto front (CSV, PNG), the best arch.

Reads only the journal, so a report can be rebuilt at any time, even mid-search.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from edgenas.search.constraints import Constraints
from edgenas.search.journal import Journal, Trial
from edgenas.search.pareto import front_of
from edgenas.search.strategies.base import Objective

COST_COLUMNS = ("params", "macs", "flash_bytes", "peak_sram_bytes")


def _row(trial: Trial, metric_names: list[str]) -> dict[str, object]:
    cost, metrics = trial.cost or {}, trial.metrics or {}
    seconds = None if trial.finished_at is None else round(trial.finished_at - trial.asked_at, 3)
    return {
        "trial": trial.id, "status": trial.status, "arch_id": trial.arch.id, "arch": trial.arch_str,
        **{k: cost.get(k) for k in COST_COLUMNS}, **{k: metrics.get(k) for k in metric_names},
        "seconds": seconds, "worker": trial.worker, "error": trial.error,
    }


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="") as f:
        if not rows:
            return
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def pareto_trials(trials: list[Trial], objectives: list[Objective]) -> list[Trial]:
    """The done trials on the Pareto front of ``objectives``."""
    return [trials[i] for i in front_of([t.values for t in trials], objectives)]  # type: ignore[misc]


def _plot(path: Path, done: list[Trial], objective: Objective, constraints: Constraints,
          device: str, best: Trial | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    panels = [("macs", "MACs (millions)", 1e6, constraints.max_macs, "MACs limit"),
              ("peak_sram_bytes", "peak SRAM, int8 (kB)", 1024, constraints.max_peak_sram_bytes,
               f"{device} SRAM")]
    for ax, (metric, label, scale, limit, limit_label) in zip(axes, panels, strict=True):
        x = np.array([t.values[metric] for t in done]) / scale  # type: ignore[index]
        y = np.array([t.values[objective.name] for t in done])  # type: ignore[index]
        front = pareto_trials(done, [objective, Objective(metric, "min")])
        fx = np.array([t.values[metric] for t in front]) / scale  # type: ignore[index]
        fy = np.array([t.values[objective.name] for t in front])  # type: ignore[index]
        order = np.argsort(fx)
        ax.scatter(x, y, s=18, color="0.65", label=f"evaluated ({len(done)})")
        ax.step(fx[order], fy[order], where="post", color="tab:red", lw=1.5)
        ax.scatter(fx, fy, s=30, color="tab:red", label=f"Pareto front ({len(front)})", zorder=3)
        if best is not None:
            ax.scatter([best.values[metric] / scale], [best.values[objective.name]],  # type: ignore[index]
                       marker="*", s=220, color="gold", edgecolor="black", zorder=4, label="best")
        if limit is not None:
            ax.axvline(limit / scale, ls="--", color="tab:blue", label=limit_label)
        ax.set_xlabel(label)
        ax.set_ylabel(objective.name.replace("_", " "))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{objective.name.replace('_', ' ')} vs cost of every evaluated architecture")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(journal: Journal, objectives: list[Objective], out: str | Path,
                 constraints: Constraints, device: str = "device") -> dict[str, Path]:
    """Write trials.csv, pareto.csv, pareto.png, best_arch.json (+ best_weights.pt) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trials = journal.trials()
    metric_names = sorted({k for t in trials for k in (t.metrics or {})})
    objective = objectives[0]
    done = [t for t in trials if t.status == "done" and objective.name in (t.metrics or {})]
    files = {"trials": out / "trials.csv", "pareto": out / "pareto.csv", "plot": out / "pareto.png"}
    _write_csv(files["trials"], [_row(t, metric_names) for t in trials])
    front_objectives = [objective, Objective("macs", "min"), Objective("peak_sram_bytes", "min")]
    front = pareto_trials(done, front_objectives)
    _write_csv(files["pareto"], [_row(t, metric_names) for t in sorted(front, key=lambda t: t.id)])
    sign = 1 if objective.goal == "max" else -1
    best = max(done, key=lambda t: sign * t.values[objective.name]) if done else None  # type: ignore[index]
    if done:
        _plot(files["plot"], done, objective, constraints, device, best)
    if best is not None:
        files["best arch"] = out / "best_arch.json"
        meta = journal.meta()  # what it takes to rebuild, retrain or export the network
        estimator = meta.get("estimator_options", {})
        files["best arch"].write_text(json.dumps({
            "space": best.arch.space, "values": best.arch.values, "string": best.arch_str,
            "arch_id": best.arch.id, "trial": best.id, "cost": best.cost, "metrics": best.metrics,
            "space_options": meta.get("space_options", {}), "num_classes": meta.get("num_classes"),
            "dataset": estimator.get("dataset"), "data_dir": estimator.get("data_dir"),
        }, indent=2) + "\n")
        weights = out / "weights" / f"{best.arch.id}.pt"
        if weights.exists():
            files["best weights"] = out / "best_weights.pt"
            shutil.copyfile(weights, files["best weights"])
    return files
