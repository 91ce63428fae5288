"""Once-for-All supernet: exact subnet extraction, elastic layers, progressive shrinking, evaluator, CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from edgenas.errors import EdgenasError
from edgenas.estimate.evaluators import make_evaluator
from edgenas.spaces import get_space
from edgenas.supernet import ElasticMBConv, OFASupernet
from edgenas.supernet.checkpoint import SupernetSetup, load_supernet
from edgenas.supernet.evaluator import SupernetEvaluator
from edgenas.supernet.shrink import ShrinkConfig, subnet_accuracy, train_supernet

# stage 1 starts with a stride-1 block whose input and output widths match: a residual first block
EXACT_OPTIONS = {"resolutions": [16, 24], "widths": [0.5], "stem": 16, "first": 8,
                 "stages": [[24, 2, [1, 2, 3]], [24, 1, [1, 2]], [40, 2, [2, 3]]]}
SMALL_OPTIONS = {"resolutions": [16], "widths": [0.5], "stem": 16, "first": 8,
                 "stages": [[24, 2, [1, 2]], [40, 2, [1, 2]]]}


@torch.no_grad()
def randomise(net: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and kernel transforms, so exactness tests can fail."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0, 0.2, generator=g)
    for name, p in net.named_parameters():
        if "transform" in name:
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return net


def sampled_archs(net: OFASupernet, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [net.max_arch(), net.min_arch()] + [net.space.sample(rng) for _ in range(n)]


# --- exact extraction ---------------------------------------------------------------------------------
@pytest.mark.parametrize("space_name, options", [
    ("mcunet", EXACT_OPTIONS),
    ("mobilenet", {**EXACT_OPTIONS, "head": 64}),  # with the 1x1 feature-mix layer before pooling
])
def test_extracted_subnet_is_the_space_network_with_identical_outputs(space_name, options):
    space = get_space(space_name, **options)
    torch.manual_seed(0)
    net = randomise(OFASupernet(space, num_classes=7)).eval()
    for arch in sampled_archs(net, 6):
        r = arch["resolution"]
        x = torch.randn(3, 3, r, r, generator=torch.Generator().manual_seed(r))
        with torch.no_grad():
            expected = net.set_active(arch)(x)
        subnet = net.extract_subnet(arch)
        reference = space.build(arch, 7)
        assert str(subnet) == str(reference)  # same modules, so the analytic cost applies unchanged
        assert {k: v.shape for k, v in subnet.state_dict().items()} == \
            {k: v.shape for k, v in reference.state_dict().items()}
        assert sum(p.numel() for p in subnet.parameters()) == space.cost(arch, 7).params
        assert not subnet.training
        with torch.no_grad():
            got = subnet(x)
        assert torch.allclose(got, expected, rtol=0, atol=1e-6), space.to_string(arch)


def test_depth_skips_the_last_blocks_of_a_stage():
    net = OFASupernet(get_space("mcunet", **SMALL_OPTIONS))
    arch = net.min_arch()
    net.set_active(arch)
    names = [n for n, _ in net.extract_subnet(arch).named_children()]
    assert names == ["stem", "first", "s0b0", "s1b0", "head"]
    assert [n for n, _ in net.named_children()] == ["stem", "first", "s0b0", "s0b1", "s1b0", "s1b1", "head"]


# --- elastic layers -------------------------------------------------------------------------------------
def test_kernel_transform_is_centre_crop_times_learned_matrices():
    torch.manual_seed(0)
    block = ElasticMBConv(8, 8, 1, (3, 5, 7), (3, 6))
    w7 = block.body[1][0].weight.detach()  # type: ignore[index]
    # identity matrices: plain centre crops
    assert torch.equal(block.active_kernel(5), w7[:, :, 1:6, 1:6])
    assert torch.equal(block.active_kernel(3), w7[:, :, 2:5, 2:5])
    with torch.no_grad():
        block.transform_7to5.copy_(2 * torch.eye(25))
        block.transform_5to3.copy_(torch.eye(9).flip(0))  # reverses the 9 taps
    w5 = block.active_kernel(5)
    assert torch.allclose(w5, 2 * w7[:, :, 1:6, 1:6])
    expected3 = (2 * w7[:, :, 2:5, 2:5]).reshape(48, 1, 9).flip(-1).reshape(48, 1, 3, 3)
    assert torch.allclose(block.active_kernel(3), expected3)
    plain = ElasticMBConv(8, 8, 1, (3, 5, 7), (3, 6), kernel_transform=False)
    assert not [n for n, _ in plain.named_parameters() if "transform" in n]
    assert plain.active_kernel(3).shape == (48, 1, 3, 3)


def test_sorting_channels_keeps_the_function_and_puts_important_channels_first():
    torch.manual_seed(1)
    block = randomise(ElasticMBConv(8, 8, 1, (3, 5), (3, 6))).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        before = block(x)
        importance = block.body[2][0].weight.abs().sum((0, 2, 3)).clone()  # type: ignore[index]
        block.sort_channels()
        after = block(x)
        sorted_importance = block.body[2][0].weight.abs().sum((0, 2, 3))  # type: ignore[index]
    assert torch.allclose(after, before, atol=1e-5)
    assert torch.all(sorted_importance[:-1] >= sorted_importance[1:])
    assert torch.allclose(sorted_importance[:24], torch.sort(importance, descending=True).values[:24])


def test_elastic_batch_norm_updates_only_the_active_channels():
    block = ElasticMBConv(8, 16, 2, (3,), (3, 6)).train()
    bn = block.get_submodule("0.1")  # not residual: the layers are children 0, 1, 2
    block.set_active(3, 3)
    block(torch.randn(4, 8, 8, 8))
    assert torch.all(bn.running_mean[:24] != 0) and torch.all(bn.running_mean[24:] == 0)


def test_wrong_archs_and_spaces_are_one_line_errors():
    net = OFASupernet(get_space("mcunet", **SMALL_OPTIONS))
    other = get_space("mcunet", **{**SMALL_OPTIONS, "widths": [0.5, 1.0]})
    wide = other.make({**net.max_arch().values, "width": 1.0})
    with pytest.raises(EdgenasError, match="width"):
        net.extract_subnet(wide)
    with pytest.raises(EdgenasError, match="one width"):
        OFASupernet(other)
    with pytest.raises(EdgenasError, match="MobileNet-style"):
        OFASupernet(get_space("nb201"))  # type: ignore[arg-type]
    with pytest.raises(EdgenasError, match="expand ratios must be > 1"):
        OFASupernet(get_space("mcunet", **SMALL_OPTIONS, expands=[1, 3]))
    with pytest.raises(EdgenasError, match="unknown supernet phase"):
        ShrinkConfig(phases=("full", "width"))


# --- training -----------------------------------------------------------------------------------------
TRAIN = ShrinkConfig(epochs=1, full_epochs=2, subnets_per_step=2, seed=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small supernet trained by progressive shrinking on digits at 16 px (~10 s on one core)."""
    setup = SupernetSetup("mcunet", SMALL_OPTIONS)
    torch.manual_seed(0)
    net = setup.build()
    data = {16: setup.dataset_at(16)}
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    history = train_supernet(net, data, TRAIN, setup, checkpoint=path)
    return net, data[16], path, history


@pytest.mark.slow
def test_trained_supernet_subnets_beat_chance_by_far(trained):
    net, data, _, history = trained
    assert [h.phase for h in history] == ["full", "full", "kernel", "depth", "expand"]
    largest, _ = subnet_accuracy(net, net.max_arch(), data)
    smallest, _ = subnet_accuracy(net, net.min_arch(), data)
    assert largest >= 0.85  # chance is 0.10
    assert smallest >= 0.60
    # before the elastic phases the smallest subnet was near chance: shrinking is what trained it
    assert history[1].min_val < 0.5 < history[-1].min_val


@pytest.mark.slow
def test_evaluator_loads_the_checkpoint_and_matches_direct_measurement(trained, tmp_path):
    net, data, path, _ = trained
    evaluator = make_evaluator("supernet", "mcunet", checkpoint=str(path), weights_dir=str(tmp_path))
    assert isinstance(evaluator, SupernetEvaluator) and evaluator.objective == "val_accuracy"
    rng = np.random.default_rng(3)
    arch = net.space.sample(rng)
    direct, subnet = subnet_accuracy(net, arch, data, bn_batches=10)
    metrics = evaluator(arch)
    assert metrics["val_accuracy"] == pytest.approx(100 * direct)
    assert 0 <= metrics["test_accuracy"] <= 100
    again = pickle.loads(pickle.dumps(evaluator))
    assert again._net is None  # weights are reloaded in the worker, not pickled
    assert again(arch)["val_accuracy"] == metrics["val_accuracy"]
    saved = torch.load(tmp_path / f"{arch.id}.pt", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in subnet.state_dict().items())
    loaded, setup, _ = load_supernet(path)
    assert setup.space_options == SMALL_OPTIONS
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in net.state_dict().items())


@pytest.mark.slow
def test_search_runs_with_the_supernet_estimator(trained, tmp_path):
    from edgenas.search.api import SearchConfig, run_search

    _, _, path, _ = trained
    config = SearchConfig(space="mcunet", space_options=SMALL_OPTIONS, budget=4, strategy="random",
                          journal=str(tmp_path / "j.db"), estimator="supernet",
                          estimator_options={"checkpoint": str(path)})
    outcome = run_search(config)
    assert outcome.state.done == 4 and outcome.state.failed == 0
    assert outcome.state.best is not None and outcome.state.best.values["val_accuracy"] > 50


def test_evaluator_option_errors(tmp_path):
    with pytest.raises(EdgenasError, match="needs a trained supernet"):
        make_evaluator("supernet", "mcunet")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(EdgenasError, match="corrupt") as e:
        make_evaluator("supernet", "mcunet", checkpoint=str(bad))
    assert "\n" not in str(e.value)
    from edgenas.estimate.train import save_checkpoint

    save_checkpoint(tmp_path / "plain.pt", {"model": {}})
    with pytest.raises(EdgenasError, match="not a supernet checkpoint"):
        make_evaluator("supernet", "mcunet", checkpoint=str(tmp_path / "plain.pt"))


@pytest.mark.slow
def test_evaluator_rejects_other_spaces_and_archs(trained):
    net, _, path, _ = trained
    with pytest.raises(EdgenasError, match="search with --space mcunet"):
        make_evaluator("supernet", "mobilenet", checkpoint=str(path))
    with pytest.raises(EdgenasError, match="pass --dataset digits"):
        make_evaluator("supernet", "mcunet", checkpoint=str(path), dataset="cifar10")
    evaluator = make_evaluator("supernet", "mcunet", checkpoint=str(path), dataset="digits")
    bigger = get_space("mcunet", **{**SMALL_OPTIONS, "resolutions": [16, 32]})
    with pytest.raises(EdgenasError, match="has no subnet for this arch"):
        evaluator(bigger.make({**net.max_arch().values, "resolution": 32}))


@pytest.mark.slow
def test_resumed_training_ends_with_the_same_weights(tmp_path):
    setup = SupernetSetup("mcunet", SMALL_OPTIONS, train_size=128)
    config = ShrinkConfig(epochs=1, full_epochs=1, phases=("full", "expand"), batch_size=32, bn_batches=1)
    data = {16: setup.dataset_at(16)}

    def fresh() -> OFASupernet:
        torch.manual_seed(0)
        return setup.build()

    whole = fresh()
    train_supernet(whole, data, config, setup)

    class Stop(Exception):
        pass

    def stop(_record) -> None:
        raise Stop

    path = tmp_path / "ckpt.pt"
    with pytest.raises(Stop):
        train_supernet(fresh(), data, config, setup, checkpoint=path, on_epoch=stop)
    resumed = fresh()
    history = train_supernet(resumed, data, config, setup, checkpoint=path,
                             resume=torch.load(path, weights_only=True))
    assert [h.phase for h in history] == ["full", "expand"]
    for k, v in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


# --- CLI ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_train_eval_info(cli, cli_error, tmp_path):
    out = tmp_path / "sn.pt"
    opts = [f"-o{k}={json.dumps(v)}" for k, v in SMALL_OPTIONS.items()]
    code, stdout, err = cli("supernet", "train", "--space", "mcunet", *opts, "--dataset", "digits",
                            "--epochs", "1", "--full-epochs", "1", "--phases", "full,expand",
                            "--train-size", "256", "--out", str(out))
    assert code == 0, err
    assert "expand epoch 1/1" in stdout and out.is_file()
    code, stdout, err = cli("supernet", "eval", "--checkpoint", str(out), "--arch", "max",
                            "--arch", "r16_w0.5|k3e4|k5e3,k7e6", "--json")
    assert code == 0, err
    rows = json.loads(stdout)
    assert [r["arch"] for r in rows] == ["r16_w0.5|k7e6,k7e6|k7e6,k7e6", "r16_w0.5|k3e4|k5e3,k7e6"]
    space = get_space("mcunet", **SMALL_OPTIONS)
    assert rows[1]["macs"] == space.cost(space.parse("r16_w0.5|k3e4|k5e3,k7e6")).macs < rows[0]["macs"]
    assert rows[0]["val_accuracy"] > 50
    code, stdout, err = cli("supernet", "train", "--resume", str(out))  # finished: nothing left to train
    assert code == 0 and "epoch 1/1" not in stdout and "2, 2" in stdout, err  # the checkpoint's 2 epochs
    code, stdout, err = cli("supernet", "info", str(out))
    assert code == 0 and "--space-option resolutions=[16]" in stdout
    for args, message in [
        (("eval", "--checkpoint", str(out), "--arch", "r16_w0.5|k3e4"), "stages"),
        (("eval", "--checkpoint", str(tmp_path / "none.pt"), "--arch", "max"), "does not exist"),
        (("train", "--phases", "full,width", "--out", str(tmp_path / "x.pt")), "unknown supernet phase"),
        (("train", "--space", "nb201", "--out", str(tmp_path / "x.pt")), "MobileNet-style"),
    ]:
        err = cli_error("supernet", *args)
        assert message in err, err
