"""``edgenas export``: the found architecture as an ONNX file, optionally quantised to int8."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from edgenas.cli.options import parse_options
from edgenas.cli.output import console, fmt_bytes, fmt_int, print_json
from edgenas.errors import EdgenasError

if TYPE_CHECKING:
    from edgenas.export import OnnxReport, QuantReport, WeightBytes


def _paths(run: str | None, arch: str | None, weights: str | None,
           out: str | None) -> tuple[Path, Path, Path]:
    """best_arch.json, best_weights.pt and the ONNX output, from --run and/or explicit paths."""
    if run is not None:
        run_dir = Path(run)
        if not run_dir.is_dir():
            raise EdgenasError(
                f"run directory {run_dir} not found; give the --out directory of edgenas search"
            )
        return (Path(arch) if arch else run_dir / "best_arch.json",
                Path(weights) if weights else run_dir / "best_weights.pt",
                Path(out) if out else run_dir / "model.onnx")
    if arch is None or weights is None:
        raise EdgenasError(
            "give --run DIR (an edgenas search output), or both --arch FILE and --weights FILE"
        )
    return Path(arch), Path(weights), Path(out) if out else Path(arch).with_name("model.onnx")


def _int8_path(out: Path) -> Path:
    return out.with_name(out.stem + ".int8" + out.suffix)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f}%"


ROWS = ("file", "file size", "weights + biases in file", "scales + zero points",
        "analytic flash (edgenas cost)", "test accuracy (onnxruntime)", "max |torch - onnxruntime|")


def _table(title: str, columns: dict[str, dict[str, str]]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("", style="bold")
    for name in columns:
        t.add_column(name, justify="right")
    rows = [r for r in ROWS if any(r in col for col in columns.values())]
    for row in rows:
        t.add_row(row, *(col.get(row, "—") for col in columns.values()))
    return t


def export(
    run: Annotated[str | None, typer.Option(help="output directory of edgenas search")] = None,
    arch: Annotated[str | None, typer.Option(help="arch JSON (default RUN/best_arch.json)")] = None,
    weights: Annotated[
        str | None, typer.Option(help="state_dict file (default RUN/best_weights.pt)")
    ] = None,
    out: Annotated[str | None, typer.Option(help="ONNX file to write (default RUN/model.onnx)")] = None,
    int8: Annotated[
        bool, typer.Option("--int8", help="also write a static int8 model (OUT.int8.onnx)")
    ] = False,
    dataset: Annotated[
        str | None, typer.Option(help="dataset for calibration and test accuracy (default: the arch file's)")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="directory of the dataset's files")] = None,
    calibration: Annotated[int, typer.Option(help="training images to calibrate int8 ranges on")] = 256,
    fmt: Annotated[
        str, typer.Option("--format", help="int8 format: qdq (standard ONNX) or qoperator")
    ] = "qdq",
    opset: Annotated[int, typer.Option(help="ONNX opset")] = 17,
    exporter: Annotated[str, typer.Option(help="torchscript or dynamo (needs onnxscript)")] = "torchscript",
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="symbolic batch axis")] = False,
    num_classes: Annotated[
        int | None, typer.Option(help="classifier outputs (default: from the weights)")
    ] = None,
    space_option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="space option KEY=VALUE the search used")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the reports as JSON")] = False,
) -> None:
    """Export a found architecture to ONNX (verified against PyTorch) and optionally int8."""
    from edgenas.export import (
        calibration_batches,
        compare_flash,
        export_onnx,
        labelled_batches,
        load_found,
        quantize_int8,
        weight_bytes,
    )
    from edgenas.export.onnx import ort_session
    from edgenas.export.quantize import accuracy_and_logits

    if calibration <= 0:
        raise EdgenasError(f"--calibration must be > 0 images, got {calibration}")
    arch_path, weights_path, out_path = _paths(run, arch, weights, out)
    found = load_found(arch_path, weights_path, space_options=parse_options(space_option),
                       num_classes=num_classes)
    dataset = dataset or found.meta.get("dataset")
    data_dir = data_dir or found.meta.get("data_dir")
    if int8 and dataset is None:
        raise EdgenasError(
            "--int8 calibrates on training images; pass --dataset NAME (the one the search used)"
        )
    data = None
    if dataset is not None:
        from edgenas.estimate.data import load_dataset

        c, h, w = found.input_shape
        if h != w:
            raise EdgenasError(
                f"the arch takes {h}x{w} inputs; datasets are square, export without --dataset"
            )
        data = load_dataset(dataset, data_dir, resolution=h, channels=c)
        if data.num_classes != found.num_classes:
            raise EdgenasError(
                f"{dataset} has {data.num_classes} classes but the weights have {found.num_classes}; "
                "pass the dataset the search trained on"
            )
    onnx_report = export_onnx(found.model, found.input_shape, out_path, opset, dynamic_batch=dynamic_batch,
                              exporter=exporter)  # type: ignore[arg-type]
    flash = {p: found.space.cost(found.arch, found.num_classes, p).flash_bytes for p in ("fp32", "int8")}
    result: dict[str, Any] = {"arch": found.title, "arch_id": found.arch.id, "onnx": onnx_report.to_dict(),
                              "analytic_flash_bytes": flash}
    quant = None
    if int8 and data is not None:
        quant = quantize_int8(out_path, _int8_path(out_path), calibration_batches(data, "train", calibration),
                              test_batches=labelled_batches(data, "test"), fmt=fmt)  # type: ignore[arg-type]
        result["int8"] = quant.to_dict()
        result["flash_comparison"] = vars(compare_flash(quant.int8, flash["int8"]))
    elif data is not None:
        acc, _ = accuracy_and_logits(ort_session(out_path), labelled_batches(data, "test"))
        result["fp32_accuracy"] = acc
    if as_json:
        print_json(result)
        return
    columns = _columns(onnx_report, weight_bytes(out_path), quant, flash, result.get("fp32_accuracy"))
    console.print(_table(f"{found.title}  ({found.arch.id})", columns))
    console.print("ONNX ops: " + ", ".join(f"{op} {n}" for op, n in onnx_report.ops.items()), highlight=False)
    if quant is not None:
        gap = compare_flash(quant.int8, flash["int8"])
        console.print(
            f"int8 file = weights + biases {fmt_int(gap.onnx_weights)} "
            f"(analytic flash {fmt_int(gap.analytic)}, gap {gap.weight_gap:+,})"
            f" + scales/zero points {fmt_int(gap.quant_params)} + unquantised {fmt_int(gap.unquantised)}"
            f" + graph structure {fmt_int(gap.overhead)} bytes",
            highlight=False,
        )


def _columns(onnx_report: OnnxReport, fp32_bytes: WeightBytes, quant: QuantReport | None,
             flash: dict[str, int], fp32_accuracy: float | None) -> dict[str, dict[str, str]]:
    """One column per file: fp32 and, with --int8, int8."""
    fp32 = {
        "file": str(onnx_report.path),
        "file size": fmt_bytes(onnx_report.file_bytes),
        "weights + biases in file": fmt_int(fp32_bytes.weights + fp32_bytes.biases),
        "analytic flash (edgenas cost)": fmt_int(flash["fp32"]),
        "test accuracy (onnxruntime)": _pct(quant.fp32_accuracy if quant else fp32_accuracy),
        "max |torch - onnxruntime|": f"{onnx_report.max_abs_diff:.2e} on logits up to "
                                     f"{onnx_report.output_scale:.3g} ({onnx_report.check_inputs} inputs)",
    }
    if quant is None:
        return {"fp32": fp32}
    int8 = {
        "file": str(quant.int8_path),
        "file size": f"{fmt_bytes(quant.int8_bytes)}, {quant.size_ratio:.3f}x",
        "weights + biases in file": fmt_int(quant.int8.weights + quant.int8.biases),
        "scales + zero points": fmt_int(quant.int8.scales + quant.int8.zero_points),
        "analytic flash (edgenas cost)": fmt_int(flash["int8"]),
        "test accuracy (onnxruntime)": f"{_pct(quant.int8_accuracy)} ({quant.test_images:,} images)",
        "max |torch - onnxruntime|": f"max |int8 - fp32| logit {quant.max_logit_diff:.3f}",
    }
    return {"fp32": fp32, f"int8 ({quant.format}, {quant.calibration_images:,} calibration images)": int8}


def register(app: typer.Typer) -> None:
    app.command("export")(export)
