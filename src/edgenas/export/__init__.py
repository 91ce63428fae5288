"""Export of a found architecture: ONNX (checked against PyTorch) and int8 quantisation.

``export_onnx(model, (C, H, W), "model.onnx")`` writes and verifies the fp32 file;
``quantize_int8("model.onnx", "model.int8.onnx", calibration_batches(data))`` writes the
int8 one; ``load_found(best_arch.json, best_weights.pt)`` rebuilds what a search found.
"""

from edgenas.export.found import FoundModel, load_found, read_arch_file, read_state_dict
from edgenas.export.onnx import EXPORTERS, ExportMismatch, OnnxReport, export_onnx
from edgenas.export.quantize import (
    FlashComparison,
    QuantReport,
    WeightBytes,
    calibration_batches,
    compact_onnx,
    compare_flash,
    labelled_batches,
    quantize_int8,
    weight_bytes,
)

__all__ = [
    "EXPORTERS", "ExportMismatch", "FlashComparison", "FoundModel", "OnnxReport", "QuantReport",
    "WeightBytes",
    "calibration_batches", "compact_onnx", "compare_flash", "export_onnx", "labelled_batches", "load_found",
    "quantize_int8", "read_arch_file", "read_state_dict", "weight_bytes",
]
