"""Post-training static int8 quantisation with onnxruntime, and where the int8 file's bytes go.

``quantize_int8`` calibrates activation ranges on a few hundred training images (MinMax by
default), then writes int8 weights (per output channel), int32 biases and int8 activations,
in QDQ format (QuantizeLinear/DequantizeLinear pairs around float ops, which onnxruntime
fuses into integer kernels) or QOperator format (QLinearConv & co.).

Why the int8 file is larger than our analytic ``flash_bytes`` (``edgenas.cost.estimate`` at
int8: 1 byte per weight and 4 per bias, BatchNorm folded in): the weight and bias bytes in
the file are exactly that number (:func:`compare_flash` splits the file; the tests check the
equality on a trained network), and the rest is
  * quantisation parameters, proportional to the number of output channels: a float32 scale
    and an int8 zero point per weight channel (5 B/channel in QOperator format; QDQ also
    stores a float32 scale and an int32 zero point per bias channel, 13 B/channel), plus a
    scale and zero point per quantised activation tensor. Measured on a 51-conv MCUNet arch
    (173,808 flash bytes): 45,170 B in QDQ (26% of the weights), 17,520 B in QOperator (10%);
  * tensors left in float (ops onnxruntime does not quantise) and shape constants;
  * the protobuf structure: nodes, attributes, tensor names (shortened by :func:`compact_onnx`,
    which brings it from 25-30% to 7-10% of a small int8 file).
A microcontroller runtime keeps per-channel requantisation parameters too (CMSIS-NN: an int32
multiplier and shift per output channel), so the first item is real flash that the analytic
figure leaves out; it grows with channel count, not with kernel size, so it matters most for
depthwise layers.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from edgenas.errors import EdgenasError
from edgenas.export.onnx import fixed_batch, op_counts, ort_session, run_batched

QuantFormatName = Literal["qdq", "qoperator"]
CalibrationName = Literal["minmax", "percentile", "entropy"]
FORMATS: tuple[str, ...] = ("qdq", "qoperator")
CALIBRATIONS: tuple[str, ...] = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class WeightBytes:
    """The initializer bytes of an ONNX file by role, and what the rest of the file takes."""

    weights: int  # conv/linear weight tensors (int8 after quantisation, float32 before)
    biases: int  # their biases (int32 after quantisation)
    scales: int  # float32 quantisation scales (weights per channel, activations per tensor)
    zero_points: int  # int8/uint8 zero points
    float_other: int  # float tensors left unquantised (other ops' parameters)
    other: int  # shape constants and any other initializer
    file_bytes: int

    @property
    def initializers(self) -> int:
        return self.weights + self.biases + self.scales + self.zero_points + self.float_other + self.other

    @property
    def overhead(self) -> int:
        """Protobuf graph structure: names, nodes, attributes, Constant nodes."""
        return self.file_bytes - self.initializers


@dataclass(frozen=True)
class FlashComparison:
    """Analytic int8 ``flash_bytes`` next to the bytes of the int8 ONNX file."""

    analytic: int  # edgenas.cost.estimate(..., "int8").flash_bytes
    onnx_weights: int  # int8 weights + int32 biases in the file
    quant_params: int  # scales + zero points
    unquantised: int  # float and other initializers
    overhead: int  # protobuf structure
    file_bytes: int

    @property
    def weight_gap(self) -> int:
        """onnx_weights - analytic: 0 when every conv/linear is quantised and BN folded."""
        return self.onnx_weights - self.analytic


@dataclass(frozen=True)
class QuantReport:
    """fp32 vs int8: file sizes, where the bytes go and, with test data, onnxruntime accuracy."""

    fp32_path: Path
    int8_path: Path
    fp32_bytes: int
    int8_bytes: int
    format: str
    per_channel: bool
    calibration: str
    calibration_images: int
    fp32: WeightBytes
    int8: WeightBytes
    ops: dict[str, int] = field(default_factory=dict)  # op types of the int8 graph
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    test_images: int = 0
    max_logit_diff: float | None = None  # largest |fp32 - int8| logit on the test images

    @property
    def size_ratio(self) -> float:
        return self.int8_bytes / self.fp32_bytes

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d.update(fp32_path=str(self.fp32_path), int8_path=str(self.int8_path), size_ratio=self.size_ratio)
        return d


def calibration_batches(data, split: str = "train", count: int = 256, batch_size: int = 64,
                        seed: int = 0) -> list[np.ndarray]:
    """``count`` normalised images (float32, N C H W) of a dataset split, seeded shuffle, no augmentation."""
    if count <= 0:
        raise EdgenasError(f"calibration images must be > 0, got {count}")
    batches: list[np.ndarray] = []
    taken = 0
    for x, _ in data.loader(split, batch_size, shuffle=True, augment=False, seed=seed, drop_last=False):
        part = x[: count - taken].numpy().astype(np.float32, copy=False)
        batches.append(part)
        taken += len(part)
        if taken >= count:
            break
    return batches


def labelled_batches(data, split: str = "test", batch_size: int = 256) -> list[tuple[np.ndarray, np.ndarray]]:
    """Normalised images and labels of a split, in order, as numpy arrays."""
    return [(x.numpy(), y.numpy()) for x, y in
            data.loader(split, batch_size, shuffle=False, augment=False, drop_last=False)]


def _as_numpy(x: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return arr.astype(np.float32, copy=False)


def _reader(batches: list[np.ndarray], input_name: str, batch: int | None):
    """An onnxruntime CalibrationDataReader over ``batches``, cut to the model's fixed batch size."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = self._items()

        def _items(self) -> Iterator[dict[str, np.ndarray]]:
            for x in batches:
                step = batch or len(x)
                for i in range(0, len(x) - step + 1, step):
                    yield {input_name: x[i:i + step]}

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

        def rewind(self) -> None:
            self.items = self._items()

    return Reader()


def weight_bytes(path: str | Path) -> WeightBytes:
    """Bytes of every initializer of an ONNX file, by the role its readers give it."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    proto = onnx.load(str(path))
    readers: dict[str, list[tuple[str, int]]] = {}
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            readers.setdefault(name, []).append((node.op_type, i))
    totals = dict.fromkeys(("weights", "biases", "scales", "zero_points", "float_other", "other"), 0)
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        roles = readers.get(init.name, [])
        totals[_role(arr, roles)] += arr.nbytes
    return WeightBytes(**totals, file_bytes=path.stat().st_size)


_QDQ = ("QuantizeLinear", "DequantizeLinear")
_WEIGHTED = ("Conv", "Gemm", "MatMul", "ConvTranspose")
# QOperator ops: (weight input, bias input, quantisation-parameter inputs)
_QLINEAR: dict[str, tuple[int, int | None, tuple[int, ...]]] = {
    "QLinearConv": (3, 8, (1, 2, 4, 5, 6, 7)),
    "QLinearMatMul": (3, None, (1, 2, 4, 5, 6, 7)),
    "QGemm": (3, 6, (1, 2, 4, 5, 7, 8)),
}


def _role(arr: np.ndarray, roles: list[tuple[str, int]]) -> str:
    for op, i in roles:
        if op in _QDQ:
            if i == 1:
                return "scales"
            if i == 2:
                return "zero_points"
            if arr.dtype == np.int32:
                return "biases"
            return "weights" if arr.size > 1 else "other"
        if op in _WEIGHTED and i in (1, 2):
            return "weights" if i == 1 else "biases"
        if op in _QLINEAR:
            w, b, params = _QLINEAR[op]
            if i == w:
                return "weights"
            if i == b:
                return "biases"
            if i in params:
                return "scales" if arr.dtype == np.float32 else "zero_points"
    return "float_other" if np.issubdtype(arr.dtype, np.floating) else "other"


def compact_onnx(path: str | Path) -> int:
    """Shrink an ONNX file in place without changing what it computes; returns bytes saved.

    Drops initializers and Constant nodes nobody reads (the QOperator quantiser leaves the
    Clip bounds it fused into QLinearConv) and ``value_info``, and renames every internal
    tensor to a short base-36 id and every node to "" (the exporter's names, such as
    ``/blocks/blocks.3/conv/conv.0/Conv_output_0_QuantizeLinear_Output``, take a quarter of
    a small int8 file). Graph input and output names are kept.
    """
    import onnx

    path = Path(path)
    before = path.stat().st_size
    proto = onnx.load(str(path))
    graph = proto.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in graph.node
           for a in n.attribute):
        return 0  # subgraphs (If, Loop) read outer names: leave such files alone
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    read = {name for node in graph.node for name in node.input} | keep
    unused = [init for init in graph.initializer if init.name not in read]
    for init in unused:
        graph.initializer.remove(init)
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in read]:
        graph.node.remove(node)
    del graph.value_info[:]
    short: dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in keep:
            return name
        return short.setdefault(name, np.base_repr(len(short), 36).lower())

    for init in graph.initializer:
        init.name = rename(init.name)
        init.doc_string = ""
    for node in graph.node:
        node.name, node.doc_string = "", ""
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return before - path.stat().st_size


def compare_flash(int8: WeightBytes, analytic_flash_bytes: int) -> FlashComparison:
    """The int8 file's bytes split into what ``flash_bytes`` counts and what it leaves out."""
    return FlashComparison(
        analytic=analytic_flash_bytes, onnx_weights=int8.weights + int8.biases,
        quant_params=int8.scales + int8.zero_points, unquantised=int8.float_other + int8.other,
        overhead=int8.overhead, file_bytes=int8.file_bytes,
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization logs and prints advice on every call; keep the console clean."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def accuracy_and_logits(session, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """Top-1 accuracy of an onnxruntime session on labelled batches, and its logits."""
    logits = np.concatenate([run_batched(session, _as_numpy(x)) for x, _ in batches])
    labels = np.concatenate([np.asarray(y) for _, y in batches])
    return float((logits.argmax(1) == labels).mean()), logits


def quantize_int8(
    onnx_path: str | Path, out_path: str | Path, calibration: Iterable[np.ndarray | torch.Tensor], *,
    test_batches: Iterable[tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor]] | None = None,
    fmt: QuantFormatName = "qdq", per_channel: bool = True, method: CalibrationName = "minmax",
    compact: bool = True,
) -> QuantReport:
    """Static int8 quantisation of an fp32 ONNX file, calibrated on ``calibration`` images.

    ``calibration``: float32 batches (N, C, H, W), normalised as in training (see
    :func:`calibration_batches`). Weights are symmetric int8 (per output channel unless
    ``per_channel`` is False), activations asymmetric int8. With ``test_batches`` (images,
    labels) both files are run with onnxruntime and their top-1 accuracies reported.
    ``compact``: shorten the int8 file's tensor names (:func:`compact_onnx`); the fp32 file
    keeps the exporter's names, which map back to the PyTorch modules.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if fmt not in FORMATS:
        raise EdgenasError(f"unknown quantisation format {fmt!r}; use one of {', '.join(FORMATS)}")
    if method not in CALIBRATIONS:
        raise EdgenasError(f"unknown calibration method {method!r}; use one of {', '.join(CALIBRATIONS)}")
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise EdgenasError(f"ONNX file {onnx_path} not found; export the model first")
    if onnx_path.resolve() == out_path.resolve():
        raise EdgenasError(f"the int8 file would overwrite its input {onnx_path}; give another output path")
    batches = [_as_numpy(x) for x in calibration]
    images = sum(len(b) for b in batches)
    if images == 0:
        raise EdgenasError("no calibration images; give at least one batch of training images")
    fp32_session = ort_session(onnx_path)
    inp = fp32_session.get_inputs()[0]
    reader = _reader(batches, inp.name, fixed_batch(fp32_session))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
    try:
        with _quiet():
            quantize_static(
                onnx_path, out_path, reader,
                quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                per_channel=per_channel, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=calibrate,
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            )
        if compact:
            compact_onnx(out_path)
    except EdgenasError:
        raise
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise EdgenasError(
            f"int8 quantisation of {onnx_path} failed: {reason}; "
            f"check that the calibration images match the model input {inp.shape}"
        ) from None
    report = QuantReport(
        fp32_path=onnx_path, int8_path=out_path, fp32_bytes=onnx_path.stat().st_size,
        int8_bytes=out_path.stat().st_size, format=fmt, per_channel=per_channel, calibration=method,
        calibration_images=images, fp32=weight_bytes(onnx_path), int8=weight_bytes(out_path),
        ops=_ops(out_path),
    )
    if test_batches is None:
        return report
    labelled = [(_as_numpy(x), np.asarray(y)) for x, y in test_batches]
    fp32_acc, fp32_logits = accuracy_and_logits(fp32_session, labelled)
    int8_acc, int8_logits = accuracy_and_logits(ort_session(out_path), labelled)
    return _with(report, fp32_accuracy=fp32_acc, int8_accuracy=int8_acc, test_images=len(fp32_logits),
                 max_logit_diff=float(np.abs(fp32_logits - int8_logits).max()))


def _ops(path: Path) -> dict[str, int]:
    import onnx

    return op_counts(onnx.load(str(path)))


def _with(report: QuantReport, **changes: object) -> QuantReport:
    from dataclasses import replace

    return replace(report, **changes)
