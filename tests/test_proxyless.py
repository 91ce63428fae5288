"""ProxylessNAS: binary-gate gradients, exact expected costs, weight inheritance, lambda's effect, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgenas.blocks.mobilenet import mbconv
from edgenas.estimate.data import load_dataset
from edgenas.hardware.lut import LatencyTable, TableEntry, TableFile, distinct_layers, family, features
from edgenas.spaces import get_space
from edgenas.supernet.proxyless import BinaryMixedOp, ProxylessSupernet, proxyless_config, run_proxyless

OPTIONS = {"resolutions": [16], "widths": [0.5], "stages": [[16, 2, [2]], [24, 2, [2]]], "stem": 16,
           "first": 8}



@pytest.fixture(scope="module")
def space():
    return get_space("mcunet", **OPTIONS)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", resolution=16, channels=3, val_fraction=0.5, seed=0)


def synthetic_table(space, archs: int = 4) -> LatencyTable:
    """A table whose entries follow ms = 2e-5*MACs + 1e-6*bytes + 0.003, for the layers of a few archs
    (the rest fall back to the per-family fits); no measurement, so exact expectations."""
    rng = np.random.default_rng(0)
    graphs = [space.graph(space.sample(rng)) for _ in range(archs)]
    entries = []
    for key, layer in distinct_layers(graphs).items():
        macs, nbytes = features(layer)
        entries.append(TableEntry(key=key, family=family(layer.ops[0]), macs=macs, bytes=nbytes,
                                  ms=2e-5 * macs + 1e-6 * nbytes + 0.003))
    meta = TableFile(backend="torch", threads=1, runs=1, entries=entries, scale=1.1, offset_ms=0.05)
    return LatencyTable(meta)


def test_binary_gate_gradient_is_the_papers_estimator():
    """dL/dalpha_i = sum_j <dL/dy, o_j> p_j (delta_ij - p_i), with o_j every candidate's output."""
    torch.manual_seed(0)
    op = BinaryMixedOp([mbconv(8, 8, 1, e, k) for k, e in ((3, 3), (5, 4), (7, 6))]).eval()
    x = torch.randn(2, 8, 6, 6)
    alpha = torch.randn(3, requires_grad=True)
    p = torch.softmax(alpha, 0)
    active = 1
    gates = torch.nn.functional.one_hot(torch.tensor(active), 3).float() + p - p.detach()
    y = op(x, active, gates)
    assert torch.allclose(y, op.candidates[active](x))  # the value is the sampled path's
    r = torch.randn_like(y)
    (y * r).sum().backward()
    with torch.no_grad():
        dg = torch.stack([(cand(x) * r).sum() for cand in op.candidates])
        q = p.detach()
        expected = torch.stack([(dg * q * ((torch.arange(3) == i).float() - q[i])).sum() for i in range(3)])
    torch.testing.assert_close(alpha.grad, expected, rtol=1e-4, atol=1e-5)


def test_expected_macs_of_a_one_hot_path_equal_the_analytic_cost(space):
    net = ProxylessSupernet(space, 10)
    assert len(net.blocks) == 4 and len(net.choices) == 9
    for arch in (space.sample(np.random.default_rng(s)) for s in range(5)):
        idx = net.indices_of(arch)
        assert net.cost.of(idx) == space.cost(arch).macs
        one_hot = [torch.nn.functional.one_hot(torch.tensor(i), 9).double() for i in idx]
        assert float(net.cost.expected(one_hot)) == space.cost(arch).macs
        assert net.arch_of(idx) == arch


def test_expected_latency_of_a_one_hot_path_equals_the_table_prediction(space):
    table = synthetic_table(space)
    net = ProxylessSupernet(space, 10, table=table)
    assert net.cost.metric == "latency_ms"
    for arch in (space.sample(np.random.default_rng(10 + s)) for s in range(5)):
        assert net.cost.of(net.indices_of(arch)) == pytest.approx(table.predict(space.graph(arch)), rel=1e-9)


def test_fixed_path_supernet_computes_the_derived_network_with_inherited_weights(space):
    torch.manual_seed(0)
    net = ProxylessSupernet(space, 10)
    gen = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
    arch = space.sample(np.random.default_rng(2))
    net.set_path(net.indices_of(arch))
    net.eval()
    discrete = space.build(arch, 10).eval()
    discrete.load_state_dict(net.inherited_state(arch), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), discrete(x))


def test_non_searched_dims_must_be_fixed():
    from edgenas.errors import EdgenasError

    wide = get_space("mcunet", **{**OPTIONS, "widths": [0.5, 1.0]})
    with pytest.raises(EdgenasError, match=r"fixed width.*-o widths=\[0.5\]"):
        ProxylessSupernet(wide, 10)
    net = ProxylessSupernet(wide, 10, fixed={"width": 1.0})
    assert net.derive().values["width"] == 1.0
    with pytest.raises(EdgenasError, match="ProxylessNAS searches mobilenet-style spaces"):
        ProxylessSupernet(get_space("nb201"), 10)


@pytest.mark.slow
def test_a_larger_lambda_derives_a_cheaper_network(space, digits):
    """Same seed, same data: lambda 0 (accuracy only) vs lambda 1 on log E[MACs]."""
    config = proxyless_config(epochs=1, batch_size=64, alpha_lr=0.02, seed=0, threads=1)
    plain = run_proxyless(space, digits, config, lam=0.0)
    cheap = run_proxyless(space, digits, config, lam=1.0)
    assert cheap.cost.macs < plain.cost.macs
    assert cheap.derived_metric == cheap.cost.macs
    first = cheap.history.epochs[0].metrics["expected_macs"]
    uniform = ProxylessSupernet(space, 10).cost.expected([torch.full((9,), 1 / 9)] * 4)
    assert first < float(uniform)  # E[MACs] fell from (about) the uniform start


def test_cli_proxyless_json_matches_the_analytic_cost(cli, space, tmp_path):
    table = synthetic_table(space)
    path = tmp_path / "lut.json"
    table.save(path)
    args = [x for k, v in OPTIONS.items() for x in ("-o", f"{k}={json.dumps(v)}")]
    code, out, err = cli("gradient", "proxyless", "--space", "mcunet", *args,
                         "--dataset", "digits", "--lambda", "0.5", "--latency-table", str(path),
                         "--epochs", "1", "--warmup-epochs", "0", "--train-size", "64", "--batch-size", "32",
                         "--arch-out", str(tmp_path / "arch.json"), "--json")
    assert code == 0, err
    res = json.loads(out)
    arch = space.make(res["arch"])
    assert space.to_string(arch) == res["arch_string"]
    assert res["macs"] == space.cost(arch).macs and res["metric"] == "latency_ms"
    assert res["latency_ms"] == pytest.approx(table.predict(space.graph(arch)))
    assert space.parse((tmp_path / "arch.json").read_text()) == arch
    for probs in res["probabilities"].values():
        assert sum(probs.values()) == pytest.approx(1.0)


def test_cli_proxyless_table_output(cli):
    code, out, err = cli("gradient", "proxyless", "--epochs", "1", "--warmup-epochs", "0",
                         "--train-size", "64", "--batch-size", "32")
    assert code == 0, err
    assert "path probabilities" in out and "derived: r16_w0.5|" in out and "MACs" in out


@pytest.mark.parametrize(("args", "needle"), [
    (("--space", "nb201"), "ProxylessNAS searches mobilenet-style spaces"),
    (("-o", "widths=[0.5, 1.0]"), "-o widths=[0.5]"),
    (("--latency-table", "missing.json"), "latency table missing.json not found"),
    (("--lambda", "-1"), "lambda must be >= 0"),
])
def test_cli_proxyless_errors_are_one_line(cli, args, needle):
    code, _, err = cli("gradient", "proxyless", "--epochs", "1", "--warmup-epochs", "0", *args)
    assert code == 2
    assert needle in err and "Traceback" not in err
