"""ONNX export and int8 quantisation: onnxruntime reproduces PyTorch, int8 keeps accuracy, the CLI."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.data import load_dataset
from edgenas.estimate.train import TrainConfig, evaluate, train
from edgenas.export import (
    ExportMismatch,
    calibration_batches,
    compact_onnx,
    compare_flash,
    export_onnx,
    labelled_batches,
    quantize_int8,
    weight_bytes,
)
from edgenas.export.onnx import ort_session
from edgenas.models import create_model
from edgenas.spaces import get_space

# a small MBConv network whose weights outweigh the ONNX graph structure: 3 stages at 16x16
SMALL = {"resolutions": [16], "widths": [1.0], "stages": [[24, 2, [1]], [48, 2, [1]], [96, 1, [1]]],
         "stem": 16, "first": 8, "head": None, "kernels": [3], "expands": [4]}


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BN statistics and affine terms, so folding BN into the convs is really tested."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    return model


def torch_outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


# --- fp32 export ----------------------------------------------------------------------------
def test_sampled_mcunet_arch_matches_onnxruntime_and_its_weights_are_the_analytic_flash(tmp_path):
    space = get_space("mcunet", resolutions=[32], widths=[0.3])
    arch = space.sample(np.random.default_rng(0))
    torch.manual_seed(0)
    model = randomise_bn(space.build(arch, 10))
    model.train()
    report = export_onnx(model, space.input_shape(arch), tmp_path / "net.onnx", dynamic_batch=True)
    assert model.training  # the caller's mode is restored
    assert report.max_abs_diff < 1e-4
    assert report.input_shape == (3, 32, 32) and report.output_shape == (10,)
    assert report.check_inputs == 5  # 4 single images + one batch of 3 for the dynamic axis
    assert report.ops["Conv"] == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert "BatchNormalization" not in report.ops  # folded into the convolutions
    # BN folded: the file holds exactly the fp32 weights and biases edgenas.cost counts
    held = weight_bytes(report.path)
    assert held.weights + held.biases == space.cost(arch, 10, "fp32").flash_bytes
    # the symbolic batch axis takes any batch size
    x = np.random.default_rng(1).standard_normal((7, 3, 32, 32)).astype(np.float32)
    got = ort_session(report.path).run(None, {"input": x})[0]
    assert np.abs(got - torch_outputs(model, x)).max() < 1e-4


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "mobilenet_v3_small"])
def test_registered_model_at_small_resolution_matches_onnxruntime(tmp_path, name):
    torch.manual_seed(0)
    model = randomise_bn(create_model(name, num_classes=10))
    report = export_onnx(model, (3, 32, 32), tmp_path / f"{name}.onnx")
    assert report.max_abs_diff < 1e-4
    assert report.output_shape == (10,)
    proto = onnx.load(str(report.path))
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 32, 32]
    expected = {"shufflenet_v2_x0_5": "Transpose", "mobilenet_v3_small": "HardSwish"}[name]
    assert expected in report.ops  # channel shuffle / h-swish really went through the exporter


class TracingDiffers(nn.Module):
    """Computes something else while traced: the exported graph cannot match eager PyTorch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 3.0 if torch.jit.is_tracing() else x * 2.0


def test_export_whose_onnx_differs_from_torch_is_refused(tmp_path):
    with pytest.raises(ExportMismatch, match="differs from PyTorch"):
        export_onnx(TracingDiffers(), (1, 4, 4), tmp_path / "bad.onnx")


def test_export_argument_errors(tmp_path):
    net = nn.Conv2d(3, 4, 3)
    with pytest.raises(EdgenasError, match="unknown ONNX exporter"):
        export_onnx(net, (3, 8, 8), tmp_path / "a.onnx", exporter="jit")  # type: ignore[arg-type]
    with pytest.raises(EdgenasError, match="channels, height, width"):
        export_onnx(net, (1, 3, 8, 8), tmp_path / "a.onnx")
    with pytest.raises(EdgenasError, match="opset >= 18"):
        export_onnx(net, (3, 8, 8), tmp_path / "a.onnx", opset=17, exporter="dynamo")


@pytest.mark.slow
def test_dynamo_exporter_matches_onnxruntime(tmp_path):
    pytest.importorskip("onnxscript")
    torch.manual_seed(0)
    net = randomise_bn(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                                     nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)))
    report = export_onnx(net, (3, 16, 16), tmp_path / "d.onnx", opset=18, exporter="dynamo")
    assert report.max_abs_diff < 1e-4 and report.opset == 18 and report.ops["Conv"] == 1


# --- int8 -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits16():
    return load_dataset("digits", resolution=16, channels=3)


@pytest.fixture(scope="module")
def trained(digits16, tmp_path_factory):
    """The SMALL network trained 6 epochs on digits (~96-97% test), exported to fp32 ONNX."""
    space = get_space("mcunet", **SMALL)
    arch = space.make({d.name: d.options[0] for d in space.dims()})
    torch.manual_seed(0)
    model = space.build(arch, 10)
    train(model, digits16, TrainConfig(epochs=6, batch_size=64, threads=1), progress=False)
    path = tmp_path_factory.mktemp("trained") / "model.onnx"
    report = export_onnx(model, space.input_shape(arch), path)
    return space, arch, model, report


@pytest.mark.slow
def test_int8_qdq_keeps_accuracy_shrinks_the_file_and_holds_the_analytic_flash(trained, digits16, tmp_path):
    space, arch, model, fp32 = trained
    assert fp32.max_abs_diff < 1e-4
    torch_acc = evaluate(model, digits16, "test")
    assert torch_acc > 0.9  # the network really learned; int8 below is compared to this
    q = quantize_int8(fp32.path, tmp_path / "model.int8.onnx", calibration_batches(digits16, count=256),
                      test_batches=labelled_batches(digits16))
    assert q.calibration_images == 256 and q.test_images == len(digits16.test) == 359
    # onnxruntime fp32 agrees with PyTorch to ~1e-6 in the logits: at most one argmax tie flips
    assert abs(q.fp32_accuracy - torch_acc) <= 1 / 359
    # measured: int8 96.9% vs fp32 96.7-97.5%; allow 3 points (11 of 359 images)
    assert q.int8_accuracy >= q.fp32_accuracy - 0.03
    # measured 0.355: int8 weights are 1/4 of fp32, plus per-channel scales and zero points
    assert q.size_ratio < 0.37
    assert q.ops["QuantizeLinear"] > 0 and q.ops["DequantizeLinear"] > q.ops["Conv"]
    gap = compare_flash(q.int8, space.cost(arch, 10, "int8").flash_bytes)
    assert gap.weight_gap == 0  # int8 weights + int32 biases in the file = analytic flash bytes
    assert gap.unquantised == 0  # every conv and the classifier were quantised
    assert gap.quant_params > 0 and gap.overhead > 0
    assert gap.onnx_weights + gap.quant_params + gap.overhead == q.int8_bytes
    # the fp32 file's weights and biases are the analytic fp32 flash too
    assert q.fp32.weights + q.fp32.biases == space.cost(arch, 10, "fp32").flash_bytes


@pytest.mark.slow
def test_int8_qoperator_is_smaller_than_qdq_with_the_same_weights(trained, digits16, tmp_path):
    space, arch, _, fp32 = trained
    q = quantize_int8(fp32.path, tmp_path / "qop.onnx", calibration_batches(digits16, count=128),
                      test_batches=labelled_batches(digits16), fmt="qoperator")
    assert q.ops["QLinearConv"] == fp32.ops["Conv"]
    assert q.int8.weights + q.int8.biases == space.cost(arch, 10, "int8").flash_bytes
    assert q.size_ratio < 0.32  # measured 0.301: one scale + zero point per weight channel, no bias scales
    assert q.int8_accuracy >= q.fp32_accuracy - 0.03


def test_compact_onnx_shrinks_the_file_and_keeps_its_outputs(trained, tmp_path):
    fp32 = trained[3]
    path = tmp_path / "compact.onnx"
    shutil.copyfile(fp32.path, path)
    saved = compact_onnx(path)
    assert saved > 0 and path.stat().st_size == fp32.file_bytes - saved
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before = ort_session(fp32.path).run(None, {"input": x})[0]
    after = ort_session(path).run(None, {"input": x})[0]
    np.testing.assert_array_equal(before, after)


def test_quantize_errors(trained, tmp_path):
    _, _, _, fp32 = trained
    with pytest.raises(EdgenasError, match="not found"):
        quantize_int8(tmp_path / "missing.onnx", tmp_path / "q.onnx", [])
    with pytest.raises(EdgenasError, match="no calibration images"):
        quantize_int8(fp32.path, tmp_path / "q.onnx", [])
    with pytest.raises(EdgenasError, match="overwrite its input"):
        quantize_int8(fp32.path, fp32.path, [np.zeros((1, 3, 16, 16), np.float32)])
    with pytest.raises(EdgenasError, match="unknown quantisation format"):
        quantize_int8(fp32.path, tmp_path / "q.onnx", [np.zeros((1, 3, 16, 16), np.float32)],
                      fmt="int4")  # type: ignore[arg-type]


# --- CLI ------------------------------------------------------------------------------------
def write_run(directory, space, arch, model, space_options=SMALL):
    """A run directory as edgenas search writes it: best_arch.json and best_weights.pt."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"space": space.name, "values": arch.values, "string": space.to_string(arch), "arch_id": arch.id,
            "cost": space.cost(arch, 10).to_dict(per_layer=False), "metrics": {"val_acc": 0.97}}
    if space_options is not None:
        data["space_options"] = space_options
    (directory / "best_arch.json").write_text(json.dumps(data))
    torch.save(model.state_dict(), directory / "best_weights.pt")
    return directory


@pytest.mark.slow
def test_cli_exports_a_search_run_to_onnx_and_int8(cli, trained, tmp_path):
    space, arch, model, _ = trained
    run = write_run(tmp_path / "run", space, arch, model)
    code, out, err = cli("export", "--run", str(run), "--int8", "--dataset", "digits", "--calibration", "128",
                         "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["arch_id"] == arch.id
    assert result["onnx"]["max_abs_diff"] < 1e-4
    flash = space.cost(arch, 10, "int8").flash_bytes
    assert result["analytic_flash_bytes"]["int8"] == flash == result["flash_comparison"]["onnx_weights"]
    assert result["int8"]["calibration_images"] == 128
    assert result["int8"]["int8_accuracy"] >= result["int8"]["fp32_accuracy"] - 0.03
    assert (run / "model.onnx").stat().st_size == result["onnx"]["file_bytes"]
    assert (run / "model.int8.onnx").stat().st_size == result["int8"]["int8_bytes"]
    # the table: exact numbers with separators
    code, out, err = cli("export", "--run", str(run), "--out", str(tmp_path / "x.onnx"),
                         "--dataset", "digits")
    assert code == 0, err
    assert f"{space.cost(arch, 10, 'fp32').flash_bytes:,}" in out and "test accuracy" in out
    assert (tmp_path / "x.onnx").is_file() and not (tmp_path / "x.int8.onnx").exists()


def _one_line_error(cli_error, *args: str) -> str:
    err = cli_error("export", *args)
    assert err.startswith("error:"), err
    return err


def test_cli_errors_are_one_line_naming_the_file(cli_error, tmp_path):
    space = get_space("mcunet", **SMALL)
    arch = space.make({d.name: d.options[0] for d in space.dims()})
    torch.manual_seed(0)
    run = write_run(tmp_path / "run", space, arch, space.build(arch, 10))
    assert "not found" in _one_line_error(cli_error, "--run", str(tmp_path / "nope"))
    assert "--run DIR" in _one_line_error(cli_error, "--arch", str(run / "best_arch.json"))
    err = _one_line_error(cli_error, "--run", str(run), "--weights", str(tmp_path / "none.pt"))
    assert "none.pt not found" in err
    # a truncated checkpoint and a file that is no checkpoint at all
    blob = (run / "best_weights.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(blob[: len(blob) // 2])
    err = _one_line_error(cli_error, "--run", str(run), "--weights", str(tmp_path / "cut.pt"))
    assert "cut.pt is corrupt, truncated" in err and "rerun the search" in err
    (tmp_path / "text.pt").write_text("not a checkpoint\n")
    err = _one_line_error(cli_error, "--run", str(run), "--weights", str(tmp_path / "text.pt"))
    assert "text.pt is corrupt" in err
    torch.save({"weights": [1, 2, 3]}, tmp_path / "list.pt")
    err = _one_line_error(cli_error, "--run", str(run), "--weights", str(tmp_path / "list.pt"))
    assert "list.pt holds no state_dict" in err
    # weights of another arch of the same space
    other_space = get_space("mcunet", **{**SMALL, "expands": [6]})
    other = other_space.make({d.name: d.options[0] for d in other_space.dims()})
    torch.save(other_space.build(other, 10).state_dict(), tmp_path / "other.pt")
    err = _one_line_error(cli_error, "--run", str(run), "--weights", str(tmp_path / "other.pt"))
    assert "other.pt does not match the arch" in err and "of another shape" in err
    # an arch file that is not JSON, and one from a search with space options not given
    (tmp_path / "bad.json").write_text("{oops")
    err = _one_line_error(cli_error, "--run", str(run), "--arch", str(tmp_path / "bad.json"))
    assert "not valid JSON" in err
    bare = write_run(tmp_path / "bare", space, arch, space.build(arch, 10), space_options=None)
    assert "-o KEY=VALUE" in _one_line_error(cli_error, "--run", str(bare))
    assert "--dataset" in _one_line_error(cli_error, "--run", str(run), "--int8")
    assert "--calibration" in _one_line_error(cli_error, "--run", str(run), "--int8", "--calibration", "0")


def test_cli_takes_an_edgenas_train_checkpoint_without_a_run_dir(cli, tmp_path):
    from edgenas.estimate.train import save_checkpoint

    space = get_space("mcunet", **SMALL)
    arch = space.make({d.name: d.options[0] for d in space.dims()})
    torch.manual_seed(0)
    model = randomise_bn(space.build(arch, 7))  # 7 classes: read from the classifier's shape
    run = write_run(tmp_path / "run", space, arch, model)
    save_checkpoint(tmp_path / "ckpt.pt", {"model": {}, "best_model": model.state_dict()})
    out_file = tmp_path / "deploy" / "net.onnx"
    code, out, err = cli("export", "--arch", str(run / "best_arch.json"),
                         "--weights", str(tmp_path / "ckpt.pt"), "--out", str(out_file), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["onnx"]["output_shape"] == [7] and result["onnx"]["max_abs_diff"] < 1e-4
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    got = ort_session(out_file).run(None, {"input": x})[0]
    assert np.abs(got - torch_outputs(model, x)).max() < 1e-4
