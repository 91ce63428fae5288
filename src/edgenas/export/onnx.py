"""ONNX export of a trained network, checked by ``onnx.checker`` and verified with onnxruntime.

The default exporter is PyTorch's TorchScript one (``dynamo=False``): on torch 2.13 it still
works, exports a small CNN in ~0.1 s, folds BatchNorm into the convolutions (so the file's
weights are exactly what our analytic ``flash_bytes`` counts) and needs no extra package. The
``dynamo`` exporter (torch.export based, PyTorch's default since 2.9) takes ~4 s per network,
needs opset >= 18 and the ``onnxscript`` package; pick it with ``exporter="dynamo"`` once the
TorchScript exporter is gone.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from edgenas.errors import EdgenasError

Exporter = Literal["torchscript", "dynamo"]
EXPORTERS: tuple[str, ...] = ("torchscript", "dynamo")
DEFAULT_OPSET = 17
MIN_OPSET = {"torchscript": 9, "dynamo": 18}
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class ExportMismatch(EdgenasError):
    """onnxruntime's outputs differ from PyTorch's by more than the tolerance."""


@dataclass(frozen=True)
class OnnxReport:
    """What an export wrote and how closely onnxruntime reproduces PyTorch."""

    path: Path
    file_bytes: int
    opset: int
    exporter: str
    input_shape: tuple[int, ...]  # (C, H, W); the batch axis is 1, or symbolic with dynamic_batch
    output_shape: tuple[int, ...]  # of one image
    dynamic_batch: bool
    max_abs_diff: float  # largest |torch - onnxruntime| over the random check inputs
    output_scale: float  # largest |torch output| over the same inputs
    tolerance: float  # allowed diff: tolerance * max(1, output_scale)
    check_inputs: int
    ops: dict[str, int] = field(default_factory=dict)  # ONNX op type -> count

    def to_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path), "file_bytes": self.file_bytes, "opset": self.opset,
            "exporter": self.exporter, "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape), "dynamic_batch": self.dynamic_batch,
            "max_abs_diff": self.max_abs_diff, "output_scale": self.output_scale, "tolerance": self.tolerance,
            "check_inputs": self.check_inputs, "ops": dict(self.ops),
        }


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters warn (deprecation, tracer) and print progress; the report says what matters."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _run_exporter(model: nn.Module, example: torch.Tensor, path: Path, opset: int, exporter: str,
                  dynamic_batch: bool) -> None:
    names = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME]}
    if exporter == "dynamo":
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise EdgenasError(
                "the dynamo ONNX exporter needs the onnxscript package; pip install onnxscript, "
                "or use the torchscript exporter"
            ) from None
        shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
        torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=opset,
                          dynamic_shapes=shapes, external_data=False, verbose=False, **names)
    else:
        axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                          dynamic_axes=axes, do_constant_folding=True, **names)


def op_counts(model_proto) -> dict[str, int]:
    """How many nodes of each ONNX op type the graph holds, most frequent first."""
    counts = Counter(node.op_type for node in model_proto.graph.node)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def ort_session(path: str | Path, threads: int = 1):
    """A CPU onnxruntime session; one intra-op thread by default (the machine is shared)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise EdgenasError(f"onnxruntime cannot load {path} ({reason}); export the model again") from None


def fixed_batch(session) -> int | None:
    """The batch size the session's input demands, or None when the batch axis is symbolic."""
    dim = session.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) else None


def run_batched(session, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Outputs of ``session`` on ``x`` (N, C, H, W), fed in chunks the input's batch axis accepts."""
    step = fixed_batch(session) or batch_size
    name = session.get_inputs()[0].name
    outs = [session.run(None, {name: x[i:i + step]})[0] for i in range(0, len(x), step)]
    return np.concatenate(outs)


def export_onnx(
    model: nn.Module, input_shape: tuple[int, ...], path: str | Path, opset: int = DEFAULT_OPSET, *,
    dynamic_batch: bool = False, exporter: Exporter = "torchscript", tolerance: float = 1e-4,
    check_inputs: int = 4, seed: int = 0,
) -> OnnxReport:
    """Export ``model`` in eval mode for inputs ``(1, *input_shape)``, check the file, verify it.

    The file is checked with ``onnx.checker`` (full check: types and shapes), then
    ``check_inputs`` random N(0, 1) images (seeded) run through PyTorch and onnxruntime; a
    largest absolute difference above ``tolerance * max(1, largest |output|)`` (absolute for
    logits up to 1, relative above: float32 sums reordered by BN folding and other kernels
    differ by ~1e-7 of their magnitude) raises :class:`ExportMismatch`. With
    ``dynamic_batch`` the batch axis is symbolic and the check also runs a batch of 3.
    """
    import onnx

    if exporter not in EXPORTERS:
        raise EdgenasError(f"unknown ONNX exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    if opset < MIN_OPSET[exporter]:
        raise EdgenasError(f"the {exporter} exporter needs opset >= {MIN_OPSET[exporter]}, got {opset}")
    if len(input_shape) != 3 or any(int(s) <= 0 for s in input_shape):
        raise EdgenasError(f"input shape must be (channels, height, width) > 0, got {tuple(input_shape)}")
    if check_inputs < 1:
        raise EdgenasError(f"check inputs must be >= 1, got {check_inputs}; the export is always verified")
    shape = tuple(int(s) for s in input_shape)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn((1, *shape), generator=gen)
    with _eval_mode(model), torch.no_grad():
        try:
            with _quiet():
                _run_exporter(model, example, path, opset, exporter, dynamic_batch)
        except EdgenasError:
            raise
        except Exception as e:
            reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise EdgenasError(
                f"ONNX export ({exporter}, opset {opset}) failed: {reason}; "
                "the network uses an op the exporter cannot translate, try another --opset or exporter"
            ) from None
        proto = onnx.load(str(path))
        try:
            onnx.checker.check_model(proto, full_check=True)
        except Exception as e:
            reason = str(e).strip().splitlines()[0][:160]
            raise EdgenasError(f"onnx.checker rejects {path}: {reason}; report it with the arch") from None
        inputs = [torch.randn((1, *shape), generator=gen) for _ in range(check_inputs)]
        if dynamic_batch:
            inputs.append(torch.randn((3, *shape), generator=gen))
        session = ort_session(path)
        diffs, scales = [], []
        for x in inputs:
            expected = model(x).numpy()
            got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
            if got.shape != expected.shape:
                raise ExportMismatch(
                    f"onnxruntime gives output shape {got.shape}, PyTorch {expected.shape}; "
                    "the export is wrong, report it with the arch"
                )
            diffs.append(float(np.abs(got - expected).max()))
            scales.append(float(np.abs(expected).max()))
    diff, scale = float(np.max(diffs)), float(np.max(scales))  # NaN propagates
    allowed = tolerance * max(1.0, scale)
    if not diff <= allowed:  # also catches NaN
        raise ExportMismatch(
            f"onnxruntime differs from PyTorch by {diff:.3g} > {allowed:.3g} on {path}; "
            "try the other exporter, or raise the tolerance if the network is large"
        )
    return OnnxReport(
        path=path, file_bytes=path.stat().st_size,
        opset=next(int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        exporter=exporter, input_shape=shape, output_shape=tuple(expected.shape[1:]),
        dynamic_batch=dynamic_batch, max_abs_diff=diff, output_scale=scale, tolerance=tolerance,
        check_inputs=len(inputs),
        ops=op_counts(proto),
    )
