"""The Probe against plain PyTorch: same numerics, statistics equal to a naive computation, hooks gone."""
import math
import time
from collections import OrderedDict
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as nn_module
from torch.utils.data import DataLoader, Dataset, TensorDataset

from probes import Probe, ProbeWarning, RunReader, every

EVERYTHING = dict(grad_norm=1, update_size=1, activations=1, memory=1, tree=1)
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_state_dict_hooks", "_load_state_dict_pre_hooks", "_forward_hooks_with_kwargs",
              "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks", "_global_module_registration_hooks",
                "_global_parameter_registration_hooks", "_global_buffer_registration_hooks")


def mlp(dropout=0.2):
    return nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(dropout),
                         nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5))


def batches(n=6, b=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, 12, generator=g), torch.randint(0, 5, (b,), generator=g)) for _ in range(n)]


def train(model, opt, data, probe=None):
    losses = []
    source = probe.wrap(data) if probe else data
    for x, y in source:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def hook_state(model, opt):
    per_module = {(name, d): len(getattr(m, d)) for name, m in model.named_modules() for d in HOOK_DICTS}
    per_opt = (len(opt._optimizer_step_pre_hooks), len(opt._optimizer_step_post_hooks))
    global_ = {g: len(getattr(nn_module, g)) for g in GLOBAL_HOOKS}
    return per_module, per_opt, global_, torch.Tensor.backward


def test_close_leaves_the_model_exactly_as_it_was(tmp_path):
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters())
    before = hook_state(model, opt)
    probe = Probe(model, opt, run_dir=tmp_path, **EVERYTHING)
    during = hook_state(model, opt)
    assert during[1][0] >= 1 and during[1][1] >= 1  # the Probe did attach to the optimizer
    train(model, opt, batches(3), probe)
    probe.close()
    probe.close()                                   # safe twice
    assert hook_state(model, opt) == before
    assert all(v == 0 for v in before[0].values())  # the model's own hook dicts are empty again
    assert before[1] == (0, 0)


def test_hooks_removed_when_the_loop_raises(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = hook_state(model, opt)
    with pytest.raises(ValueError, match="boom"):
        with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
            train(model, opt, batches(2), probe)
            raise ValueError("boom")
    assert hook_state(model, opt) == before
    meta = RunReader(probe.run_path).meta()
    assert meta["status"] == "failed" and "boom" in meta["error"]
    assert meta["steps"] == 2


def test_numerics_unchanged_by_the_probe(tmp_path):
    def run(with_probe):
        torch.manual_seed(0)
        model = mlp()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        if with_probe:
            with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
                losses = train(model, opt, batches(8), probe)
            assert probe.error is None and probe.step_count == 8
        else:
            losses = train(model, opt, batches(8))
        return losses, [p.detach().clone() for p in model.parameters()], torch.rand(3)

    plain, probed = run(False), run(True)
    assert plain[0] == probed[0]                     # identical loss sequence, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(plain[1], probed[1]))
    assert torch.equal(plain[2], probed[2])          # and the RNG stream was not consumed


def test_statistics_equal_a_naive_per_parameter_computation(tmp_path):
    torch.manual_seed(0)
    model = mlp(dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    names = [n for n, _ in model.named_parameters()]
    naive = {"grad_norm": [], "update_norm": [], "weight_norm": [], "update_ratio": [], "loss": []}
    with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
        for x, y in probe.wrap(batches(5)):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            naive["grad_norm"].append([p.grad.norm().item() for p in model.parameters()])
            before = [p.detach().clone() for p in model.parameters()]
            opt.step()
            after = list(model.parameters())
            naive["update_norm"].append([(a - b).norm().item() for a, b in zip(after, before)])
            naive["weight_norm"].append([a.norm().item() for a in after])
            naive["update_ratio"].append([(a - b).norm().item() / b.norm().item() if b.norm() > 0 else math.nan
                                          for a, b in zip(after, before)])      # against the weight before
            naive["loss"].append(loss.item())
    reader = RunReader(probe.run_path)
    for series in ("grad_norm", "update_norm", "weight_norm", "update_ratio"):
        frame = reader.series(series)
        assert list(frame.columns) == names
        assert list(frame.index) == [0, 1, 2, 3, 4]
        np.testing.assert_allclose(frame.to_numpy(), np.array(naive[series]), rtol=2e-5, err_msg=series)
    np.testing.assert_allclose(reader.scalars()["loss"].to_numpy(), naive["loss"], rtol=1e-6)
    assert (reader.series("grad_nonfinite").to_numpy() == 0).all()


def test_large_tensors_update_size_from_a_small_sample_view(tmp_path):
    from probes.quantities.base import SAMPLE
    from probes.quantities.update_size import UpdateSize
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 2048), nn.ReLU(), nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 5))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    big = [p.numel() > SAMPLE for p in model.parameters()]
    assert big == [True, False, True, False, False, False]       # 131,072 and 524,288 elements
    held = []
    exact = {"update_norm": [], "weight_norm": []}
    with Probe(model, opt, run_dir=tmp_path, update_size=1) as probe:
        quantity = next(q for q in probe.quantities if isinstance(q, UpdateSize))
        # runs after the Probe's own pre-hook: what the snapshot holds while the optimizer steps
        opt.register_step_pre_hook(lambda *_: held.append(sum(t.numel() for t, _ in quantity._snap.values())))
        g = torch.Generator().manual_seed(3)
        for _ in range(4):
            x, y = torch.randn(32, 64, generator=g), torch.randint(0, 5, (32,), generator=g)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            before = [p.detach().clone() for p in model.parameters()]
            opt.step()
            exact["update_norm"].append([(p - b).norm().item() for p, b in zip(model.parameters(), before)])
            exact["weight_norm"].append([p.norm().item() for p in model.parameters()])
    n_small = sum(p.numel() for p, b in zip(model.parameters(), big) if not b)
    assert held and max(held) <= n_small + 2 * SAMPLE          # not the 656k elements of a whole copy
    reader = RunReader(probe.run_path)
    np.testing.assert_allclose(reader.series("weight_norm").to_numpy(), exact["weight_norm"], rtol=2e-5)
    got, want = reader.series("update_norm").to_numpy(), np.array(exact["update_norm"])
    np.testing.assert_allclose(got[:, [not b for b in big]], want[:, [not b for b in big]], rtol=2e-5)
    np.testing.assert_allclose(got[:, big], want[:, big], rtol=0.05)     # estimated from an eighth or a 32nd of them
    assert not np.allclose(got[:, big], want[:, big], rtol=1e-6)       # (and it is an estimate)


def test_a_sample_that_cannot_see_the_update_reads_unknown_not_zero(tmp_path):
    from probes.quantities.base import SAMPLE, sample_view
    torch.manual_seed(0)
    emb = nn.Embedding(400_000, 2)                                  # 800,000 elements, 16,384 sampled
    mask = torch.zeros(emb.weight.shape)
    sample_view(mask).fill_(1)
    seen = mask.any(dim=1).nonzero().flatten().tolist()
    unseen = sorted(set(range(1000)) - set(seen))[:2]
    assert SAMPLE // 2 <= len(seen) < 0.6 * SAMPLE and unseen            # rows the sample covers, and not
    frozen = nn.Linear(300, 300)                                    # dense gradient, learning rate 0
    opt = torch.optim.SGD([{"params": emb.parameters()}, {"params": frozen.parameters(), "lr": 0.0}], lr=0.5)
    rows = []
    with Probe(nn.ModuleDict({"emb": emb, "frozen": frozen}), opt, run_dir=tmp_path, update_size=1) as probe:
        for rows_used in ([unseen[0], unseen[1]], [seen[0]]):
            tokens = torch.tensor(rows_used)
            loss = emb(tokens).pow(2).sum() + frozen(torch.randn(4, 300)).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            before = emb.weight.detach().clone()
            opt.step()
            rows.append((emb.weight - before).norm().item())
    frame = RunReader(probe.run_path).series("update_norm")
    assert rows[0] > 0 and math.isnan(frame.loc[0, "emb.weight"])    # changed, but not where it looks: unknown
    assert frame.loc[1, "emb.weight"] > 0                             # a row the sample sees: measured
    assert (frame["frozen.weight"] == 0).all()                       # dense gradient, no change: a real 0


def test_activation_statistics_match_the_module_outputs(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = batches(1)[0]
    relu_out = model[1](model[0](x)).detach()
    with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
        train(model, opt, [(x, y)], probe)
    reader = RunReader(probe.run_path)
    assert reader.series("act_mean").loc[0, "1"] == pytest.approx(relu_out.mean().item(), rel=1e-5)
    assert reader.series("act_std").loc[0, "1"] == pytest.approx(relu_out.std().item(), rel=1e-5)
    assert reader.series("act_zero_frac").loc[0, "1"] == pytest.approx((relu_out == 0).float().mean().item())
    assert reader.series("act_nonfinite_frac").loc[0, "1"] == 0
    assert set(reader.series("act_mean").columns) == {"", "0", "1", "2"}


def test_large_outputs_exact_mean_and_nonfinite_count_sampled_std_and_zeros(tmp_path):
    from probes.quantities.base import sample_view

    class SpikyReLU(nn.ReLU):           # one NaN in its 131,072 output values on the second call
        calls = 0

        def forward(self, x):
            out = super().forward(x)
            self.calls += 1
            if self.calls == 2:
                out = out.clone()
                out[3, 1000] = float("nan")
            return out

    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(fc=nn.Linear(12, 4096), act=SpikyReLU(), head=nn.Linear(4096, 5)))
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = batches(1, b=32)[0]
    out = torch.relu(model.fc(x)).detach()
    mask = torch.zeros(out.shape)
    sample_view(mask).fill_(1)
    assert mask[3, 1000] == 0                                            # the NaN goes off the sample
    with Probe(model, opt, run_dir=tmp_path, activations=1) as probe:
        for _ in range(2):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
    reader = RunReader(probe.run_path)
    assert out.numel() == 131_072
    assert reader.series("act_mean").loc[0, "act"] == pytest.approx(out.mean().item(), rel=1e-5)
    assert reader.series("act_std").loc[0, "act"] == pytest.approx(out.std().item(), rel=0.06)
    zero = (out == 0).float().mean().item()
    assert 0.3 < zero < 0.7 and reader.series("act_zero_frac").loc[0, "act"] == pytest.approx(zero, abs=0.02)
    bad = reader.series("act_nonfinite_frac")
    assert bad.loc[0, "act"] == 0 and bad.loc[1, "act"] == 1 / 131_072    # not on the sample: counted whole
    assert bad.loc[1, "fc"] == 0


def test_cadences_decide_which_steps_are_recorded(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, grad_norm=2, update_size=every(3, offset=1),
               activations=0, memory=1) as probe:
        train(model, opt, batches(7), probe)
    reader = RunReader(probe.run_path)
    assert list(reader.scalars().index) == list(range(7))
    assert list(reader.series("grad_norm").index) == [0, 2, 4, 6]
    assert list(reader.series("update_ratio").index) == [1, 4]
    assert reader.series("act_mean").empty
    assert reader.scalars()["mem.rss_bytes"].gt(0).all()
    assert reader.meta()["cadences"]["grad_norm"] == "every 2 steps"


@pytest.mark.parametrize("bad, message", [
    (dict(grad_norm=-1), "grad_norm=-1"), (dict(update_size=2.5), "update_size=2.5"),
    (dict(activations="often"), "activations='often'"), (dict(memory=True), "memory=True")])
def test_bad_settings_fail_at_construction_naming_the_value(tmp_path, bad, message):
    model = mlp()
    with pytest.raises(ValueError) as err:
        Probe(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path, **bad)
    assert message in str(err.value)
    assert not list(tmp_path.iterdir())             # nothing written, nothing attached
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_bad_optimizer_and_model_are_refused(tmp_path):
    model = mlp()
    with pytest.raises(TypeError, match="optimizer"):
        Probe(model, "adam", run_dir=tmp_path)
    with pytest.raises(TypeError, match="nn.Module"):
        Probe(lambda x: x, None, run_dir=tmp_path)


def test_loss_is_captured_from_backward_and_explicit_log_wins(tmp_path):
    model = mlp(dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = batches(3)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        seen = []
        for i, (x, y) in enumerate(probe.wrap(data)):
            # gradient accumulation over two half-batches: the step's loss is their mean
            opt.zero_grad()
            halves = [F.cross_entropy(model(x[:8]), y[:8]), F.cross_entropy(model(x[8:]), y[8:])]
            for h in halves:
                (h / 2).backward()
            if i == 2:
                probe.log(loss=123.0, lr=0.1)
            opt.step()
            seen.append(sum(h.item() for h in halves) / 4)
    scalars = RunReader(probe.run_path).scalars()
    np.testing.assert_allclose(scalars["loss"].to_numpy()[:2], seen[:2], rtol=1e-6)
    assert scalars["loss"].iloc[2] == 123.0
    assert scalars["lr"].iloc[2] == pytest.approx(0.1)
    assert math.isnan(scalars["lr"].iloc[0])


def test_manual_steps_without_an_optimizer(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(8, 4)
    expected_grad, expected_delta = [], []
    with Probe(model, None, run_dir=tmp_path, grad_norm=1, update_size=1) as probe:
        for _ in range(3):
            model.zero_grad()
            model(x).pow(2).mean().backward()
            expected_grad.append([p.grad.norm().item() for p in model.parameters()])
            before = [p.detach().clone() for p in model.parameters()]
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.1 * p.grad
            expected_delta.append([(p - b).norm().item() for p, b in zip(model.parameters(), before)])
            probe.step()
    reader = RunReader(probe.run_path)
    assert probe.step_count == 3
    np.testing.assert_allclose(reader.series("grad_norm").to_numpy(), expected_grad, rtol=1e-5)
    np.testing.assert_allclose(reader.series("update_norm").to_numpy(), expected_delta, rtol=1e-4)


def test_two_optimizers_make_one_step_and_a_lone_one_still_counts(tmp_path):
    torch.manual_seed(0)
    gen, disc = nn.Linear(4, 4), nn.Linear(4, 1)
    model = nn.ModuleDict({"gen": gen, "disc": disc})
    opt_g, opt_d = torch.optim.SGD(gen.parameters(), lr=0.1), torch.optim.SGD(disc.parameters(), lr=0.1)
    with Probe(model, [opt_g, opt_d], run_dir=tmp_path, grad_norm=1) as probe:
        for _ in range(3):                      # both step: one probe step each time
            opt_d.zero_grad(); disc(gen(torch.randn(8, 4)).detach()).mean().backward(); opt_d.step()
            opt_g.zero_grad(); disc(gen(torch.randn(8, 4))).mean().backward(); opt_g.step()
        assert probe.step_count == 3
        opt_d.zero_grad(); disc(torch.randn(8, 4)).mean().backward(); opt_d.step()
        opt_d.zero_grad(); disc(torch.randn(8, 4)).mean().backward(); opt_d.step()
        assert probe.step_count == 4            # the second lone step ends the first
    assert probe.step_count == 5                # close() ends the unfinished one
    grad = RunReader(probe.run_path).series("grad_norm")
    assert grad.loc[0].notna().all()            # both optimizers' parameters in one step
    assert grad.loc[3, ["disc.weight", "disc.bias"]].notna().all()


class SlowDataset(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(0.03)
        return torch.randn(12), i % 5


def test_wrapped_loader_times_data_wait_and_forwards_everything(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(SlowDataset(), batch_size=2)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        wrapped = probe.wrap(loader)
        assert len(wrapped) == 2
        assert wrapped.dataset is loader.dataset and wrapped.batch_size == 2 and wrapped.sampler is loader.sampler
        train(model, opt, wrapped.__iter__(), None)
    reader = RunReader(probe.run_path)
    waits = reader.scalars()["data_wait_s"]
    assert len(waits) == 2 and (waits >= 0.055).all()   # two samples of 30 ms each per batch
    assert (reader.scalars()["step_time_s"] >= waits).all()
    assert reader.meta()["loader"]["batch_size"] == 2 and reader.meta()["loader"]["num_workers"] == 0


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.blocks = nn.ModuleList(nn.ModuleList([nn.Linear(6, 6), nn.Linear(6, 6)]) for _ in range(2))
        self.frozen = nn.Linear(6, 6)
        self.frozen.requires_grad_(False)
        self.lazy = nn.LazyLinear(6)
        self.out = nn.Linear(6, 10, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            for layer in block:
                x = torch.relu(layer(x))
        return self.out(self.lazy(self.frozen(x)))


def test_tree_records_tied_frozen_lazy_and_nested_modules(tmp_path):
    model = Tied()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        ids = torch.randint(0, 10, (4, 3))
        loss = F.cross_entropy(model(ids).reshape(-1, 10), ids.reshape(-1))
        opt.zero_grad(); loss.backward(); opt.step()
    trees = RunReader(probe.run_path).trees()
    first, last = trees[0][1], trees[-1][1]
    paths = [m["path"] for m in first["modules"]]
    assert "blocks.1.0" in paths and "blocks.1.1" in paths
    tensors = {t["name"]: t for t in first["tensors"]}
    assert tensors["out.weight"]["shared_with"] == ["embed.weight"] and tensors["out.weight"]["duplicate"]
    assert tensors["embed.weight"]["shared_with"] == ["out.weight"] and not tensors["embed.weight"]["duplicate"]
    assert tensors["frozen.weight"]["requires_grad"] is False and tensors["frozen.weight"]["optimizer"] is None
    assert tensors["blocks.0.1.bias"]["optimizer"] == 0 and tensors["blocks.0.1.bias"]["param_group"] == 0
    assert tensors["lazy.weight"]["lazy"] and tensors["lazy.weight"]["shape"] is None
    # the first forward materialised the lazy layer: the tree is taken again with its shapes
    after = {t["name"]: t for t in last["tensors"]}
    assert not after["lazy.weight"]["lazy"] and after["lazy.weight"]["shape"] == [6, 6]
    assert len(trees) == 2
    assert [t["name"] for t in first["tensors"] if t["kind"] == "buffer"] == []


def test_the_periodic_tree_check_sees_changes_that_no_registration_hook_reports(tmp_path):
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, tree=1) as probe:
        for k, (x, y) in enumerate(batches(6)):
            if k == 2:
                model[0].weight.requires_grad_(False)
            if k == 4:
                model[1].eval()
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
    trees = RunReader(probe.run_path).trees()
    assert [step for step, _ in trees] == [-1, 2, 4]            # attach, then only the steps that changed it
    first, mid, last = (tree for _, tree in trees)
    grad = [{t["name"]: t["requires_grad"] for t in tree["tensors"]}["0.weight"] for tree in (first, mid)]
    assert grad == [True, False]
    assert [{m["path"]: m["training"] for m in tree["modules"]}["1"] for tree in (mid, last)] == [True, False]


def test_a_layer_assigned_in_forward_retakes_the_tree(tmp_path):
    class Grows(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4)

        def forward(self, x):
            if not hasattr(self, "b"):
                self.b = nn.Linear(4, 2)
            return self.b(self.a(x))

    model = Grows()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, grad_norm=1, tree=0) as probe:
        for _ in range(3):
            opt.zero_grad(); model(torch.randn(2, 4)).sum().backward(); opt.step()
    trees = RunReader(probe.run_path).trees()
    assert [s for s, _ in trees] == [-1, 0]
    assert "b" in [m["path"] for m in trees[1][1]["modules"]]
    assert "b.weight" in RunReader(probe.run_path).series("grad_norm").columns


def test_nonfinite_gradients_are_counted(tmp_path):
    model = nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, grad_norm=1) as probe:
        opt.zero_grad()
        model(torch.randn(3, 4)).sum().backward()
        model.weight.grad[0, :3] = float("nan")
        opt.step()
    reader = RunReader(probe.run_path)
    assert reader.series("grad_nonfinite").loc[0].to_dict() == {"weight": 3.0, "bias": 0.0}
    assert math.isnan(reader.series("grad_norm").loc[0, "weight"])


def test_an_unwritable_run_dir_warns_and_training_goes_on(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the run directory should be")
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(ProbeWarning, match="not-a-dir"):
        with Probe(model, opt, run_dir=blocker) as probe:
            losses = train(model, opt, batches(2), probe)
    assert len(losses) == 2 and probe.error and probe.run_path is None
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_a_failure_inside_the_probe_never_reaches_the_training_loop(tmp_path, monkeypatch):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        def broken(*args, **kwargs):
            raise OSError("disk full")
        monkeypatch.setattr(probe._writer, "write_step", broken)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses = train(model, opt, batches(3), probe)
    assert len(losses) == 3
    assert [w.category for w in caught] == [ProbeWarning] and "disk full" in str(caught[0].message)
    assert len(opt._optimizer_step_pre_hooks) == 0      # it let go of the optimizer at once
    assert RunReader(probe.run_path).meta()["error"] == "OSError: disk full"


def test_findings_of_the_registration_checks_are_logged(tmp_path):
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(4, 4)]
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.layers[0](x))

    model = Plain()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
    with Probe(model, opt, run_dir=tmp_path, tree=1) as probe:
        for x, y in probe.wrap(DataLoader(data, batch_size=4)):
            opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
    logged = RunReader(probe.run_path).findings()
    assert [f["code"] for f in logged] == ["unregistered-module"]      # once, not once per tree
    assert logged[0]["location"].endswith(f"test_probe.py:{Plain.__init__.__code__.co_firstlineno + 2}")


def test_vanishing_gradients_are_not_recorded_as_zero(tmp_path):
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, grad_norm=1) as probe:
        opt.zero_grad()
        (model(torch.ones(2, 3)).sum() * 1e-24).backward()     # squares underflow float32
        expected = model.weight.grad.double().norm().item()
        opt.step()
    recorded = RunReader(probe.run_path).series("grad_norm").loc[0, "weight"]
    assert expected > 0 and recorded == pytest.approx(expected, rel=1e-6)


def test_two_probes_in_one_process_keep_their_own_losses(tmp_path):
    torch.manual_seed(0)
    a, b = nn.Linear(4, 1), nn.Linear(4, 1)
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    with Probe(a, opt_a, run_dir=tmp_path, run_name="a") as pa, Probe(b, opt_b, run_dir=tmp_path, run_name="b") as pb:
        for _ in range(3):
            opt_a.zero_grad(); a(x).pow(2).mean().backward(); opt_a.step()
            opt_b.zero_grad(); (b(x).pow(2).mean() + 100).backward(); opt_b.step()
    loss_a = RunReader(pa.run_path).scalars()["loss"]
    loss_b = RunReader(pb.run_path).scalars()["loss"]
    assert (loss_a < 50).all() and (loss_b > 100).all()


def test_the_model_can_be_deep_copied_while_a_probe_is_attached(tmp_path):
    import copy
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        train(model, opt, batches(2), probe)
        ema = copy.deepcopy(model)                  # what EMA and model-averaging code does mid-run
        assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters()))
        train(model, opt, batches(2), probe)
    assert probe.error is None and probe.step_count == 4


FULL_DISK_SCRIPT = '''
import json, resource, signal, sys, warnings
sys.path.insert(0, sys.argv[2])
import torch
from probes import Probe

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write past the limit fails (EFBIG) instead of killing us


def train(name, steps, full_from):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    done = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if full_from == 0:
            resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, resource.RLIM_INFINITY))
        with Probe(model, opt, run_dir=sys.argv[1], run_name=name, grad_norm=1, update_size=1) as probe:  # ATTACH
            for step in range(steps):
                if step == full_from:       # the disk fills up mid-run: the log cannot grow past 64 KiB
                    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
                opt.zero_grad()
                model(torch.randn(4, 64)).pow(2).mean().backward()
                opt.step()  # STEP
                done += 1
        hooks = len(opt._optimizer_step_pre_hooks) + len(opt._optimizer_step_post_hooks)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    return {"done": done, "error": probe.error, "recorded": probe.step_count, "hooks": hooks,
            "run_path": probe.run_path and str(probe.run_path),
            "warnings": [[w.category.__name__, w.filename, w.lineno, str(w.message)] for w in caught]}


print(json.dumps({"attach": train("full-at-attach", 5, full_from=0), "mid_run": train("full-mid-run", 200, 3)}))
'''


def test_a_full_disk_warns_once_naming_the_run_log_and_training_goes_on(tmp_path):
    """A real write failure, no root needed: RLIMIT_FSIZE (with SIGXFSZ ignored) makes the kernel refuse every
    write past the limit, as a full disk or a quota does. At attach the Probe cannot create its log; mid-run
    the log cannot grow. Either way: one ProbeWarning at the user's line naming the log, every training step
    runs, no hook is left behind, the Probe never raises, and the steps written before the disk filled read
    back."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from probes.runs import STOPPED_AFTER_S, list_runs, run_status
    root = Path(__file__).resolve().parent.parent
    script = tmp_path / "train_full_disk.py"
    script.write_text(FULL_DISK_SCRIPT)
    runs = tmp_path / "runs"
    proc = subprocess.run([sys.executable, str(script), str(runs), str(root)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    lines = script.read_text().splitlines()
    attach_line = next(i for i, text in enumerate(lines, 1) if "# ATTACH" in text)
    step_line = next(i for i, text in enumerate(lines, 1) if "# STEP" in text)

    attach = result["attach"]
    assert attach["done"] == 5 and attach["recorded"] == 0 and attach["hooks"] == 0
    assert attach["run_path"] is None
    ((category, file, line, message),) = attach["warnings"]
    assert category == "ProbeWarning" and (file, line) == (str(script), attach_line)
    assert f"cannot open a run log under {runs}" in message and str(runs / "full-at-attach" / "run.db") in message
    assert "cannot write run log" in message and "disk" in message and "training continues" in message
    assert not (runs / "full-at-attach").exists()           # no empty run folder, no half-made log left behind

    mid = result["mid_run"]
    assert mid["done"] == 200 and mid["hooks"] == 0
    assert 1 <= mid["recorded"] < 200
    ((category, file, line, message),) = mid["warnings"]     # once, not once per step
    assert category == "ProbeWarning" and (file, line) == (str(script), step_line)
    log = runs / "full-mid-run" / "run.db"
    assert f"{log}: cannot write run log" in message and "disk" in message
    assert mid["error"] in message
    assert [p.name for p in list_runs(runs)] == ["full-mid-run"]
    with RunReader(runs / "full-mid-run") as reader:
        meta = reader.meta()
        assert reader.step_count() == mid["recorded"]       # every step committed before the disk filled
        assert reader.scalars()["loss"].notna().sum() == mid["recorded"]
    # nothing more could be written (not even the closing status), but the heartbeat stopped with recording:
    # the run reads as stopped, not as running for ever
    assert run_status(runs / "full-mid-run", meta, now=time.time() + STOPPED_AFTER_S + 1) == "stopped"


@pytest.mark.parametrize("positional", [True, False])
def test_a_step_given_a_closure_is_read_after_the_closure_computed_its_gradients(tmp_path, positional):
    """optimizer.step(closure), as Lightning's automatic optimization calls it: forward, zero_grad and backward
    run inside step(). The gradients recorded for a step are the ones its closure computed (not the previous
    step's), the update is measured from the weights before it, and the losses are the closure's."""
    torch.manual_seed(0)
    model, data = mlp(dropout=0.0), batches(5)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    grads, before = [], []
    with Probe(model, opt, run_dir=tmp_path, run_name="closure", **EVERYTHING):
        for x, y in data:
            def closure():
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                grads.append(float(model[0].weight.grad.norm()))
                before.append(model[0].weight.detach().clone())
                return loss
            opt.step(closure) if positional else opt.step(closure=closure)
    run = RunReader(tmp_path / "closure")
    np.testing.assert_allclose(run.series("grad_norm")["0.weight"].to_numpy(), grads, rtol=1e-5)
    after = before[1:] + [model[0].weight.detach()]
    np.testing.assert_allclose(run.series("update_norm")["0.weight"].to_numpy(),
                               [float((a - b).norm()) for a, b in zip(after, before)], rtol=1e-4)
    assert run.scalars()["loss"].notna().all() and run.findings() == []
