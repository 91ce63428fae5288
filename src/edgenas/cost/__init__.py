"""Exact cost of a network: analytic (layer graph) and module profiler routes."""

from edgenas.cost.estimate import BYTES_PER_ELEMENT, Cost, LayerCost, Precision, estimate, per_layer
from edgenas.cost.memory import PEAK_METHODS, Peak, peak_liveness, peak_mcunet, peaks

__all__ = [
    "BYTES_PER_ELEMENT", "PEAK_METHODS", "Cost", "LayerCost", "Peak", "Precision", "estimate",
    "peak_liveness", "peak_mcunet", "peaks", "per_layer",
]
