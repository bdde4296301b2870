"""What the autograd graph shows at run time: a loss that reaches no parameter, a layer run under no_grad in
forward, a crash of backward that a cut explains, graphs kept across steps, the classes of a cross-entropy,
and a loop that never steps. Real training loops with a Probe; the run read back as `report` reads it."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe, RunReader
from probes.report import report_run
from probes.watchers.gradient_chain_broken import cross_entropy_classes, reaches


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))


def batch(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 8, generator=g), torch.randint(0, 4, (8,), generator=g)


def loop(model, run_dir, step, steps=6, opt=None):
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.05)
    with Probe(model, opt, run_dir=run_dir) as probe:
        for i in range(steps):
            step(model, opt, *batch(i))
    return probe, report_run(probe.run_path)


def loud(result):
    return [(f["code"], f["module"]) for f in result["findings"] if f["severity"] != "info"]


def test_a_loss_rebuilt_from_numbers_reaches_no_parameter(tmp_path):
    def step(model, opt, x, y):
        value = F.cross_entropy(model(x), y).item()
        loss = torch.tensor(value, requires_grad=True)          # the bug
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, result = loop(mlp(), tmp_path, step)
    (f,) = [f for f in result["findings"] if f["code"] == "gradient-chain-broken"]
    assert f["module"] == "" and f["severity"] == "error"
    assert f["location"].endswith(f"test_graph_watchers.py:{step.__code__.co_firstlineno + 4}")
    assert f["evidence"]["loss_grad_fn"] is None and "leaf tensor" in f["detail"]


def test_a_discriminator_loss_beside_the_generators_is_fine(tmp_path):
    """A GAN step: one backward reaches only the other model, the other reaches ours: nothing to say."""
    torch.manual_seed(0)
    critic = nn.Linear(4, 1)
    opt_c = torch.optim.SGD(critic.parameters(), lr=0.01)

    def step(model, opt, x, y):
        fake = model(x)
        loss_c = critic(fake.detach()).mean()
        opt_c.zero_grad()
        loss_c.backward()
        opt_c.step()
        loss_g = -critic(model(x)).mean()
        opt.zero_grad()
        loss_g.backward()
        opt.step()
    _, result = loop(mlp(), tmp_path, step)
    assert loud(result) == []


def test_a_layer_under_no_grad_inside_forward_cuts_the_layers_before_it(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc1, self.fc2, self.fc3 = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 4)

        def forward(self, x):
            x = torch.relu(self.fc1(x))
            with torch.no_grad():
                x = torch.relu(self.fc2(x))         # the cut
            return self.fc3(x)

    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, result = loop(Net(), tmp_path, step)
    (f,) = [f for f in result["findings"] if f["code"] == "gradient-chain-broken"]
    # fc1 before the region, and fc2 inside it: neither ever trains
    assert f["evidence"]["op"] == "torch.no_grad()"
    assert f["evidence"]["params_without_grad"] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert f["location"].endswith(f":{Net.forward.__code__.co_firstlineno + 3}")


def test_a_frozen_backbone_run_under_no_grad_is_fine(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.backbone, self.head = nn.Linear(8, 16), nn.Linear(16, 4)
            self.backbone.requires_grad_(False)

        def forward(self, x):
            with torch.no_grad():
                x = self.backbone(x)
            return self.head(x)

    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model = Net()
    _, result = loop(model, tmp_path, step, opt=torch.optim.SGD(model.head.parameters(), lr=0.05))
    assert loud(result) == []


def test_backward_that_fails_after_a_data_cut_is_named_as_the_cut(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x))).data      # the cut

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(RuntimeError, match="does not require grad"):
        with Probe(model, opt, run_dir=tmp_path) as probe:
            x, y = batch(0)
            F.cross_entropy(model(x), y).backward()
    # the loss without a graph is seen at backward too; one bug, one finding: the cut that explains it
    assert sorted(f.evidence.get("op", "no graph") for f in probe.findings) == [".data", "no graph"]
    (f,) = report_run(probe.run_path)["findings"]
    assert (f["code"], f["module"], f["evidence"]["op"]) == ("gradient-chain-broken", "", ".data")
    assert set(f["evidence"]["params_without_grad"]) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


@pytest.mark.parametrize("keep", ["outputs", "losses", "total"])
def test_graphs_kept_across_steps_are_memory_growth_within_five_steps(tmp_path, keep):
    kept, total = [], 0

    def step(model, opt, x, y):
        nonlocal total
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if keep == "outputs":
            kept.append(out)
        elif keep == "losses":
            kept.append(loss)
        else:
            total = total + loss
    probe, result = loop(mlp(), tmp_path, step, steps=5)
    (f,) = [f for f in result["findings"] if f["code"] == "memory-growth"]
    assert f["evidence"]["kept_steps"] == [0, 1, 2] and f["severity"] == "warning"


def test_keeping_numbers_or_the_last_loss_is_not_memory_growth(tmp_path):
    history, last = [], None

    def step(model, opt, x, y):
        nonlocal last
        out = model(x)
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append((loss.item(), out.detach()))
        last = loss                                  # one step back, for logging
    _, result = loop(mlp(), tmp_path, step, steps=8)
    assert loud(result) == []


def test_the_classes_of_a_cross_entropy_come_from_its_graph(tmp_path):
    logits = torch.randn(8, 7, requires_grad=True)
    y = torch.randint(0, 7, (8,))
    assert cross_entropy_classes(F.cross_entropy(logits, y)) == 7
    assert cross_entropy_classes(F.cross_entropy(logits.view(8, 7, 1).expand(8, 7, 5),
                                                 y.view(8, 1).expand(8, 5))) == 7
    assert cross_entropy_classes(F.cross_entropy(logits, y) / 4) is None          # scaled: not the plain loss
    assert cross_entropy_classes(F.mse_loss(logits, torch.zeros(8, 7))) is None
    assert reaches(F.cross_entropy(logits, y), {id(logits)}) is True
    assert reaches(torch.tensor(1.0, requires_grad=True), {id(logits)}) is False


def test_a_huge_first_loss_with_the_users_own_loss_is_suspicious(tmp_path):
    """An output layer initialised far too large: the first cross-entropy is orders above log(classes),
    seen from the loss's graph in the user's own loop (no check worker to infer the targets)."""
    model = mlp()
    with torch.no_grad():
        model[4].weight.mul_(1e4)

    def step(model, opt, x, y):
        loss = nn.CrossEntropyLoss()(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    probe, result = loop(model, tmp_path, step, steps=3, opt=torch.optim.SGD(model.parameters(), lr=1e-6))
    with RunReader(probe.run_path) as reader:
        assert reader.meta()["classes"] == 4
    (f,) = [f for f in result["findings"] if f["code"] == "suspicious-initial-loss"]
    assert f["evidence"]["classes"] == 4 and f["evidence"]["loss"] > 100 * math.log(4)


def test_backward_and_zero_grad_without_any_optimizer_step_is_optimizer_not_stepping(tmp_path):
    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()                              # and no opt.step()
    probe, result = loop(mlp(), tmp_path, step, steps=4)
    assert probe.step_count == 0
    (f,) = result["findings"]                        # seen live; the end-of-run verdict is not repeated
    assert (f["code"], f["severity"], f["module"]) == ("optimizer-not-stepping", "error", "")
    assert f["evidence"]["pattern"] == "never steps" and f["evidence"]["optimizer_steps"] == 0
    assert f["location"].endswith(":" + str(step.__code__.co_firstlineno + 3))     # the backward() line


def test_backward_without_zero_grad_or_step_is_judged_when_the_run_ends(tmp_path):
    # gradients pile up (it could be accumulation before a first step): only the end of the run can tell
    def step(model, opt, x, y):
        F.cross_entropy(model(x), y).backward()
    probe, result = loop(mlp(), tmp_path, step, steps=4)
    (f,) = result["findings"]
    assert (f["code"], f["severity"], f["module"]) == ("optimizer-not-stepping", "error", "")
    assert f["evidence"]["backward_calls"] == 4 and f["evidence"]["optimizer_steps"] == 0


def test_a_loss_cut_outside_forward_is_named_before_backward_raises(tmp_path):
    """argmax predictions into the loss: no cut inside forward to blame, the loss itself has no graph."""
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(RuntimeError, match="does not require grad"):
        with Probe(model, opt, run_dir=tmp_path) as probe:
            x, y = batch(0)
            predicted = model(x).argmax(1).float()
            loss = F.mse_loss(predicted, y.float())
            loss.backward()
    (f,) = report_run(probe.run_path)["findings"]
    assert (f["code"], f["module"], f["evidence"]["no_graph"]) == ("gradient-chain-broken", "", True)
    assert f["location"].endswith(":" + str(test_a_loss_cut_outside_forward_is_named_before_backward_raises
                                             .__code__.co_firstlineno + 9))


def dropout_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))


def test_validation_with_gradients_on_and_no_eval_is_eval_mode_missing(tmp_path):
    """No model.eval() and no torch.no_grad(): forwards in training mode that no backward ever uses."""
    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for i in range(3):
            val_loss = F.cross_entropy(model(x + i), y)           # validation, the bug
            val_loss.item()
    _, result = loop(dropout_mlp(), tmp_path, step, steps=3)
    (f,) = [f for f in result["findings"] if f["code"] == "eval-mode-missing"]
    assert f["module"] == "2" and f["evidence"]["context"] == "gradients on" and f["evidence"]["passes"] == 3
    assert f["location"].endswith(f":{step.__code__.co_firstlineno + 6}")


def test_several_forwards_into_one_backward_are_training(tmp_path):
    """A siamese/contrastive step (two forwards, one loss), and a second forward whose output is used."""
    def step(model, opt, x, y):
        a, b = model(x), model(x.flip(0))
        loss = F.cross_entropy(a, y) + F.mse_loss(a, b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, result = loop(dropout_mlp(), tmp_path, step, steps=4)
    assert loud(result) == []


class TwoStepWrapper(torch.optim.Optimizer):
    """An optimizer that wraps another over the same parameters and steps it itself (as SAM does with
    first_step/second_step); its own step() is never called in the loop."""

    def __init__(self, params, base, **kw):
        super().__init__(params, dict(rho=0.05))
        self.base_optimizer = base(self.param_groups, **kw)
        self.param_groups = self.base_optimizer.param_groups

    @torch.no_grad()
    def first_step(self):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    self.state[p]["e"] = e = p.grad * g["rho"]
                    p.add_(e)

    @torch.no_grad()
    def second_step(self):
        for g in self.param_groups:
            for p in g["params"]:
                if "e" in self.state[p]:
                    p.sub_(self.state[p]["e"])
        self.base_optimizer.step()


def test_a_wrapper_optimizer_that_steps_an_inner_one_is_seen_stepping(tmp_path):
    model = mlp()
    opt = TwoStepWrapper(model.parameters(), torch.optim.SGD, lr=0.05)

    def step(model, _, x, y):
        F.cross_entropy(model(x), y).backward()
        opt.first_step()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.second_step()
        opt.zero_grad()
    probe, result = loop(model, tmp_path, step, steps=4, opt=opt)
    assert probe.step_count == 4 and loud(result) == []


def test_reentrant_checkpoint_on_data_inputs_leaves_its_layers_untrained(tmp_path):
    from torch.utils.checkpoint import checkpoint

    class Net(nn.Module):
        def __init__(self, reentrant_on_data):
            super().__init__()
            torch.manual_seed(0)
            self.encoder = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 16))
            self.head = nn.Linear(16, 4)
            self.on_data = reentrant_on_data

        def forward(self, x):
            if self.on_data:
                h = checkpoint(self.encoder, x, use_reentrant=True)      # x needs no grad: the cut
            else:
                h = checkpoint(self.encoder, x.requires_grad_(), use_reentrant=True)
            return self.head(h)

    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)        # torch's own "None of the inputs have requires_grad"
        _, broken = loop(Net(True), tmp_path / "a", step, steps=2)
        _, fine = loop(Net(False), tmp_path / "b", step, steps=2)
    (f,) = [f for f in broken["findings"] if f["code"] == "gradient-chain-broken"]
    assert f["module"] == "encoder" and "checkpoint(use_reentrant=True)" in f["evidence"]["op"]
    assert loud(fine) == []


def test_functional_dropout_in_an_eval_pass_is_eval_mode_missing_but_mc_dropout_is_not(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 4)

        def forward(self, x):
            return self.fc2(F.dropout(torch.relu(self.fc1(x)), p=0.3))     # no training=self.training

    def step(model, opt, x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            model(x)
        model.train()
    _, result = loop(Net(), tmp_path, step, steps=2)
    (f,) = [f for f in result["findings"] if f["code"] == "eval-mode-missing"]
    assert f["module"] == "" and f["evidence"]["functional"] is True
    assert f["location"].endswith(f":{Net.forward.__code__.co_firstlineno + 1}")
