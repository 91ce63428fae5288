"""DARTS: the mixed op, the two optimisation levels, discretisation, weight inheritance, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import NB201_DIR
from edgenas.blocks.cell_ops import NB201_OPS
from edgenas.estimate.data import load_dataset
from edgenas.spaces import get_space
from edgenas.spaces.nb201 import EDGES, OPS, edge_dim
from edgenas.supernet.darts import (
    BilevelConfig,
    DartsSupernet,
    MixedOp,
    NB201Supernet,
    bilevel_search,
    inherit_state,
    make_supernet,
    perturbation_select,
)

TABLE = NB201_DIR / "nb201_12epoch.csv"



@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", resolution=16, channels=3, val_fraction=0.5, seed=0, train_size=128)


def _nb201(channels: int = 4):
    return get_space("nb201", resolution=16, channels=channels, cells_per_stage=1)


def _randomise_bn(net: torch.nn.Module) -> None:
    """Non-trivial BN statistics, so eval-mode equality means the right BN got the right weights."""
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            if m.affine:
                m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=gen))


def test_mixed_op_is_the_softmax_weighted_sum_of_its_candidates():
    torch.manual_seed(0)
    op = MixedOp([NB201_OPS[name](6, 1) for name in OPS])
    x = torch.randn(3, 6, 8, 8)
    alpha = torch.randn(len(OPS), requires_grad=True)
    w = torch.softmax(alpha, 0)
    expected = sum(float(w[k].detach()) * cand(x) for k, cand in enumerate(op.candidates))
    torch.testing.assert_close(op(x, w), expected, rtol=1e-5, atol=1e-6)
    # one-hot weights without a graph run just the chosen op, and give exactly its output
    one_hot = torch.zeros(len(OPS))
    one_hot[3] = 1.0
    assert torch.equal(op(x, one_hot), op.candidates[3](x))
    # the gradient of the mixture wrt each weight is the inner product with that op's output
    g = torch.randn(3, 6, 8, 8)
    (op(x, w) * g).sum().backward()
    with torch.no_grad():
        dw = torch.tensor([float((cand(x) * g).sum()) for cand in op.candidates])
    expected_grad = w.detach() * (dw - (w.detach() * dw).sum())  # softmax Jacobian
    torch.testing.assert_close(alpha.grad, expected_grad, rtol=1e-4, atol=1e-5)


class _Recording(NB201Supernet):
    """Records which parameters get a gradient in which phase of the bilevel loop."""

    def __init__(self, space):
        super().__init__(space, 10)
        self.phase = "none"
        self.seen: set[tuple[str, str]] = set()
        for p in self.arch_parameters():
            p.register_hook(lambda grad: self.seen.add((self.phase, "alpha")))
        for p in self.weight_parameters():
            p.register_hook(lambda grad: self.seen.add((self.phase, "weight")))

    def before_arch_step(self, gen):
        self.phase = "arch"

    def before_weight_step(self, gen):
        self.phase = "weight"


def test_alphas_get_gradients_only_in_the_alpha_step(digits):
    torch.manual_seed(0)
    net = _Recording(_nb201())
    before = net.alphas["cell"].detach().clone()
    snapshots = []
    config = BilevelConfig(epochs=2, warmup_epochs=1, batch_size=32, alpha_lr=0.01, seed=0)
    bilevel_search(net, digits, config,
                   on_epoch=lambda e: snapshots.append(net.alphas["cell"].detach().clone()))
    assert net.seen == {("arch", "alpha"), ("weight", "weight")}
    assert torch.equal(snapshots[0], before)  # the warmup epoch never moves alpha
    assert not torch.equal(snapshots[1], before)  # the alpha steps do


def test_search_is_reproducible_for_a_seed(digits):
    def run() -> torch.Tensor:
        torch.manual_seed(3)
        net = make_supernet(_nb201(), 10)
        bilevel_search(net, digits, BilevelConfig(epochs=1, batch_size=32, alpha_lr=0.01, seed=3))
        return net.alphas["cell"].detach()

    assert torch.equal(run(), run())


def test_nb201_discretisation_is_argmax_per_edge_and_may_exclude_none():
    space = _nb201()
    net = make_supernet(space, 10)
    probs = np.full((6, 5), 0.1)
    picks = ["none", "nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1"]
    for r, op in enumerate(picks):
        probs[r, OPS.index(op)] = 0.5
    probs[0, OPS.index("skip_connect")] = 0.3  # runner-up on the 'none' edges
    probs[3, OPS.index("nor_conv_3x3")] = 0.3
    arch = net.derive({"cell": probs})
    assert space.to_string(arch) == (
        "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    )
    no_none = net.derive({"cell": probs}, exclude=("none",))
    assert space.to_string(no_none) == (
        "|skip_connect~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    )
    assert space.make(no_none.values) == no_none


def test_darts_discretisation_keeps_two_strongest_inputs_per_node_without_none():
    space = get_space("darts", channels=4, layers=3, resolution=16)
    net = make_supernet(space, 10)
    assert isinstance(net, DartsSupernet)
    ops = net.op_names
    scores = {}
    for cell in ("normal", "reduce"):
        s = np.full((14, 8), 0.1)
        s[:, ops.index("none")] = 0.9  # 'none' is never chosen, however strong
        # node 2 (rows 0-1): both inputs; node 3 (rows 2-4): states 2 and 0
        s[0, ops.index("sep_conv_3x3")] = 0.5
        s[1, ops.index("skip_connect")] = 0.4
        s[2, ops.index("max_pool_3x3")] = 0.45
        s[3, ops.index("dil_conv_5x5")] = 0.2
        s[4, ops.index("sep_conv_5x5")] = 0.6
        scores[cell] = s
    arch = net.derive(scores)
    v = arch.values
    assert v["normal.node2.inputs"] == (0, 1)
    assert (v["normal.node2.op0"], v["normal.node2.op1"]) == ("sep_conv_3x3", "skip_connect")
    assert v["normal.node3.inputs"] == (0, 2)
    assert (v["normal.node3.op0"], v["normal.node3.op1"]) == ("max_pool_3x3", "sep_conv_5x5")
    assert all(v[f"{c}.node{n}.op{k}"] != "none" for c in ("normal", "reduce") for n in (2, 3, 4, 5)
               for k in (0, 1))


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_one_hot_supernet_computes_the_derived_network_with_inherited_weights(name):
    space = _nb201() if name == "nb201" else get_space("darts", channels=4, layers=3, resolution=16)
    torch.manual_seed(0)
    net = make_supernet(space, 10)
    _randomise_bn(net)
    arch = space.sample(np.random.default_rng(5))
    fixed = {g: torch.zeros_like(a) for g, a in net.alphas.items()}
    for prefix, (_, k) in net.picks(arch).items():
        cell = int(prefix.split(".")[2])
        cells = net.features.cells
        group = "cell" if name == "nb201" else ("reduce" if cells[cell].reduction else "normal")
        node, src = int(prefix.split(".")[4]), int(prefix.split(".")[6])
        row = EDGES.index((src, node + 1)) if name == "nb201" else sum(range(2, 2 + node)) + src
        fixed[group][row, k] = 1.0
    net.fixed = fixed
    net.eval()
    discrete = space.build(arch, 10).eval()
    discrete.load_state_dict(net.inherited_state(arch), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), discrete(x))


def test_inherit_state_renames_the_picked_candidate_and_drops_the_rest():
    state = {
        "alphas.cell": torch.zeros(1), "stem.weight": torch.ones(1),
        "a.ops.2.candidates.0.w": torch.full((1,), 0.0), "a.ops.2.candidates.1.w": torch.full((1,), 1.0),
        "b.ops.0.candidates.1.w": torch.full((1,), 2.0),
    }
    out = inherit_state(state, {"a.ops.2": ("a.ops.1", 1)})
    assert set(out) == {"stem.weight", "a.ops.1.w"}
    assert float(out["a.ops.1.w"]) == 1.0


def test_perturbation_selection_scores_the_accuracy_drop_of_removing_each_op(digits):
    torch.manual_seed(0)
    net = make_supernet(_nb201(), 10)
    bilevel_search(net, digits, BilevelConfig(epochs=1, batch_size=32, seed=0))
    pt = perturbation_select(net, digits, batches=1, batch_size=64, seed=0)
    none = OPS.index("none")
    assert np.all(pt.scores["cell"][:, none] == 0.0)  # removing 'none' changes nothing
    chosen = [OPS.index(pt.arch.values[edge_dim(i, j)]) for i, j in EDGES]
    assert chosen == [int(np.argmax(row)) for row in pt.scores["cell"]]
    assert 0.0 <= pt.final_acc <= 1.0 and 0.0 <= pt.base_acc <= 1.0


@pytest.mark.skipif(not TABLE.exists(), reason="NB201 table not found in ../shared/data")
def test_cli_darts_prints_alphas_arch_and_table_accuracy(cli):
    from edgenas.estimate.tabular import load_nb201

    code, out, err = cli("gradient", "darts", "--space", "nb201", "-o", "channels=4", "--epochs", "1",
                         "--train-size", "64", "--batch-size", "32", "--table", str(TABLE), "--json")
    assert code == 0, err
    res = json.loads(out)
    space = get_space("nb201", resolution=16, channels=4, cells_per_stage=1)
    arch = space.make(res["arch"])
    assert space.to_string(arch) == res["arch_string"]
    table = load_nb201(TABLE)
    row = table.row(res["arch_string"])
    assert res["table"]["val"] == pytest.approx(table.column("cifar10", "val")[row])
    for edge, probs in res["probabilities"]["cell"].items():
        assert edge.startswith("edge_") and sum(probs.values()) == pytest.approx(1.0)
    assert res["macs"] == space.cost(arch).macs


def test_cli_darts_table_output(cli):
    code, out, err = cli("gradient", "darts", "-o", "channels=4", "--epochs", "1", "--train-size", "64",
                         "--batch-size", "32", "--selection", "no-none")
    assert code == 0, err
    assert "softmax(alpha), cell" in out and "derived (no-none): |" in out and "none~" not in out


@pytest.mark.parametrize(("args", "needle"), [
    (("--space", "mcunet"), "DARTS has no supernet for space 'mcunet'"),
    (("--selection", "best"), "unknown --selection 'best'"),
    (("--space", "darts", "--table", str(TABLE)), "--table holds NB201 accuracies"),
])
def test_cli_darts_errors_are_one_line(cli, args, needle):
    code, _, err = cli("gradient", "darts", "--epochs", "1", *args)
    assert code == 2
    assert needle in err and "Traceback" not in err
