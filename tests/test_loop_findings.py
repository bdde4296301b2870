"""The six loop bugs people ask about most, seen live by a Probe in the user's own training loop.

loss-input-mismatch, loss-shape-broadcast, gradients-accumulate, param-unreached, train-mode-off and
optimizer-not-stepping: each found at its line on a real loop, reported while the loop runs (before the Probe
closes), and quiet on the correct loops that look like them (gradient accumulation, log_softmax + NLLLoss,
label smoothing, BCEWithLogitsLoss, a validation pass followed by model.train(), a head left out of the
optimizer, PGD attacks in eval mode, LBFGS closures).
"""
import inspect
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from probes import Probe
from probes.report import report_run


def line_of(fn, text: str) -> int:
    lines, start = inspect.getsourcelines(fn)
    hits = [start + i for i, line in enumerate(lines) if text in line]
    assert len(hits) == 1, (text, hits)
    return hits[0]


def mlp(out=4, dropout=0.0, bn=False):
    torch.manual_seed(0)
    layers = [nn.Linear(8, 16)] + ([nn.BatchNorm1d(16)] if bn else []) + [nn.ReLU()]
    layers += ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(16, out)]
    return nn.Sequential(*layers)


def batch(i, kind="classes"):
    g = torch.Generator().manual_seed(i)
    x = torch.randn(8, 8, generator=g)
    if kind == "classes":
        return x, torch.randint(0, 4, (8,), generator=g)
    if kind == "multilabel":
        return x, torch.randint(0, 2, (8, 4), generator=g).float()
    return x, torch.randn(8, generator=g)


def loud(findings):
    return sorted((f.code if hasattr(f, "code") else f["code"]) for f in findings
                  if (f.severity if hasattr(f, "severity") else f["severity"]) != "info")


def run(tmp_path, model, step, steps=6, opt=None, seen_live_at=None, kind="classes", **probe_kw):
    """Train with step(model, opt, x, y, i) under a Probe at its defaults; returns (live findings at step
    `seen_live_at`, the Probe, the report's findings)."""
    opt = opt or torch.optim.SGD(model.parameters(), lr=0.05)
    live = None
    with Probe(model, opt, run_dir=tmp_path, **probe_kw) as probe:
        for i in range(steps):
            step(model, opt, *batch(i, kind), i)
            if seen_live_at is not None and i == seen_live_at:
                live = list(probe.findings)
    return live, probe, report_run(probe.run_path)["findings"]


def standard(loss_fn):
    def step(model, opt, x, y, i):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


# -- loss-input-mismatch -------------------------------------------------------------------------------
def test_softmax_probabilities_into_cross_entropy_are_found_at_the_loss_line(tmp_path):
    model = nn.Sequential(mlp(), nn.Softmax(dim=1))
    criterion = nn.CrossEntropyLoss()

    def step(model, opt, x, y, i):
        loss = criterion(model(x), y)                   # the loss call
        opt.zero_grad()
        loss.backward()
        opt.step()
    live, _, found = run(tmp_path, model, step, seen_live_at=0)
    assert loud(live) == ["loss-input-mismatch"]        # at the first step, while the loop runs
    (f,) = [f for f in found if f["code"] == "loss-input-mismatch"]
    assert f["severity"] == "error" and f["module"] is None
    assert f["location"].endswith(f":{line_of(step, '# the loss call')}")
    ev = f["evidence"]
    assert ev["input_came_from"] == "softmax" and 0 <= ev["input_min"] <= ev["input_max"] <= 1
    assert abs(ev["row_sum_min"] - 1) < 1e-3 and abs(ev["row_sum_max"] - 1) < 1e-3
    assert ev["call_input_shape"] == [8, 4] and ev["call_target_shape"] == [8]
    assert loud(found) == ["loss-input-mismatch"]


def test_a_softmax_written_by_hand_into_cross_entropy_is_found(tmp_path):
    def step(model, opt, x, y, i):
        e = model(x).exp()
        loss = F.cross_entropy(e / e.sum(1, keepdim=True), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, found = run(tmp_path, mlp(), step)
    (f,) = [f for f in found if f["code"] == "loss-input-mismatch"]
    assert f["evidence"]["input_came_from"] == "softmax"


def test_clamped_probabilities_into_cross_entropy_are_found(tmp_path):
    model = nn.Sequential(mlp(), nn.Softmax(dim=1))
    _, _, found = run(tmp_path, model, standard(lambda p, y: F.cross_entropy(p.clamp(1e-7, 1.0), y)))
    (f,) = [f for f in found if f["code"] == "loss-input-mismatch"]
    assert f["evidence"]["input_came_from"] == "softmax"


@pytest.mark.parametrize("head, loss_fn, kind, expect", [
    (nn.Identity(), nn.NLLLoss(), "classes", "logits"),
    (nn.Softmax(dim=1), nn.NLLLoss(), "classes", "probabilities"),
])
def test_nll_loss_on_anything_but_log_probabilities_is_found(tmp_path, head, loss_fn, kind, expect):
    _, _, found = run(tmp_path, nn.Sequential(mlp(), head), standard(loss_fn), kind=kind)
    (f,) = [f for f in found if f["code"] == "loss-input-mismatch"]
    assert f["evidence"]["input_kind"] == expect and f["evidence"]["input_max"] > 0


def test_a_sigmoid_before_bce_with_logits_is_found(tmp_path):
    model = nn.Sequential(mlp(), nn.Sigmoid())
    _, _, found = run(tmp_path, model, standard(nn.BCEWithLogitsLoss()), kind="multilabel")
    (f,) = [f for f in found if f["code"] == "loss-input-mismatch"]
    assert f["evidence"]["input_came_from"] == "sigmoid" and "twice" in f["title"]


def test_bce_on_raw_scores_explains_the_crash(tmp_path):
    model, criterion = mlp(), nn.BCELoss()
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        run(tmp_path, model, standard(criterion), kind="multilabel")
    probe_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    found = report_run(probe_dir)["findings"]
    (f,) = [f for f in found if f["code"] == "loss-input-mismatch"]
    assert f["evidence"]["crashed"] and "BCEWithLogitsLoss" in f["fix"]


@pytest.mark.parametrize("name, head, loss_fn, kind", [
    ("cross-entropy on logits", nn.Identity(), nn.CrossEntropyLoss(), "classes"),
    ("label smoothing", nn.Identity(), nn.CrossEntropyLoss(label_smoothing=0.1), "classes"),
    ("log_softmax + NLLLoss", nn.LogSoftmax(dim=1), nn.NLLLoss(), "classes"),
    ("BCEWithLogitsLoss on logits", nn.Identity(), nn.BCEWithLogitsLoss(), "multilabel"),
    ("sigmoid + BCELoss", nn.Sigmoid(), nn.BCELoss(), "multilabel"),
    ("soft targets", nn.Identity(), lambda out, y: F.cross_entropy(out, F.one_hot(y, 4).float() * 0.9 + 0.025),
     "classes"),
    ("distillation", nn.Identity(),
     lambda out, y: F.kl_div(F.log_softmax(out / 2, 1), F.softmax(torch.ones_like(out).detach(), 1),
                             reduction="batchmean") + F.cross_entropy(out, y), "classes"),
])
def test_correct_losses_are_clean(tmp_path, name, head, loss_fn, kind):
    _, _, found = run(tmp_path, nn.Sequential(mlp(), head), standard(loss_fn), kind=kind)
    assert loud(found) == [], name


# -- loss-shape-broadcast -----------------------------------------------------------------------------
@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss])
def test_a_prediction_of_shape_b1_against_a_target_of_shape_b_is_found(tmp_path, loss):
    def step(model, opt, x, y, i):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")                 # PyTorch's own "Using a target size" warning
            value = loss(model(x), y)                       # (8, 1) against (8,)
        opt.zero_grad()
        value.backward()
        opt.step()
    live, _, found = run(tmp_path, mlp(out=1), step, kind="regression", seen_live_at=0)
    assert loud(live) == ["loss-shape-broadcast"]
    (f,) = [f for f in found if f["code"] == "loss-shape-broadcast"]
    ev = f["evidence"]
    assert (ev["prediction_shape"], ev["target_shape"], ev["broadcast_shape"]) == ([8, 1], [8], [8, 8])
    assert f["location"].endswith(f":{line_of(step, '# (8, 1) against (8,)')}")


def test_a_broadcasting_loss_inside_forward_is_found_from_the_graph(tmp_path):
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp(out=1)

        def forward(self, x, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return F.mse_loss(self.net(x), y)

    def step(model, opt, x, y, i):
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, found = run(tmp_path, WithLoss(), step, kind="regression")
    (f,) = [f for f in found if f["code"] == "loss-shape-broadcast"]
    assert f["evidence"]["prediction_shape"] == [8, 1] and f["evidence"]["broadcast_shape"] == [8, 8]


@pytest.mark.parametrize("written", ["mean((pred - y) ** 2)", "mean(abs(y - pred))"])
def test_a_hand_written_regression_loss_that_broadcasts_is_found(tmp_path, written):
    def step(model, opt, x, y, i):
        pred = model(x)
        loss = ((pred - y) ** 2).mean() if "**" in written else (y - pred).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, found = run(tmp_path, mlp(out=1), step, kind="regression")
    (f,) = [f for f in found if f["code"] == "loss-shape-broadcast"]
    assert f["evidence"]["prediction_shape"] == [8, 1] and f["evidence"]["broadcast_shape"] == [8, 8]
    assert f["title"].startswith("A hand-written")


def test_pairwise_differences_broadcast_on_purpose_are_clean(tmp_path):
    def step(model, opt, x, y, i):
        out = model(x)                                      # (8, 4): distances of every row to every row
        loss = ((out[:, None, :] - out.detach()[None, :, :]) ** 2).mean() + F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, found = run(tmp_path, mlp(), step)
    assert loud(found) == []


def test_matching_shapes_and_a_deliberate_expand_are_clean(tmp_path):
    def step(model, opt, x, y, i):
        pred = model(x)
        loss = F.mse_loss(pred.squeeze(1), y) + F.mse_loss(pred.expand(8, 3), y[:, None].expand(8, 3))
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, found = run(tmp_path, mlp(out=1), step, kind="regression")
    assert loud(found) == []


# -- gradients-accumulate ----------------------------------------------------------------------------
def test_a_missing_zero_grad_is_found_at_the_second_step(tmp_path):
    def step(model, opt, x, y, i):
        loss = F.cross_entropy(model(x), y)
        loss.backward()                                     # no zero_grad anywhere
        opt.step()
    live, _, found = run(tmp_path, mlp(), step, seen_live_at=1)
    assert loud(live) == ["gradients-accumulate"]           # known at the second step
    (f,) = [f for f in found if f["code"] == "gradients-accumulate"]
    assert f["severity"] == "error" and f["evidence"]["step"] == 1
    assert f["location"].endswith(f":{line_of(step, '# no zero_grad anywhere')}")
    assert all(p["now_norm"] != p["applied_norm"] for p in f["evidence"]["parameters"])


def test_zero_grad_once_per_epoch_is_found(tmp_path):
    def step(model, opt, x, y, i):
        if i % 3 == 0:
            opt.zero_grad()                                 # once per "epoch" of 3 batches
        F.cross_entropy(model(x), y).backward()
        opt.step()
    _, _, found = run(tmp_path, mlp(), step)
    assert "gradients-accumulate" in loud(found)


@pytest.mark.parametrize("style", ["step then zero_grad", "zero_grad every N", "model.zero_grad", "set to None",
                                   "zero_grad(set_to_none=False)", ".grad.data.zero_()"])
def test_deliberate_accumulation_and_every_way_of_clearing_are_clean(tmp_path, style):
    n = 3

    def step(model, opt, x, y, i):
        if style == "zero_grad every N" and i % n == 0:
            opt.zero_grad()
        (F.cross_entropy(model(x), y) / n).backward()
        if (i + 1) % n:
            return
        opt.step()
        if style == "step then zero_grad":
            opt.zero_grad()
        elif style == "model.zero_grad":
            model.zero_grad()
        elif style == "set to None":
            for p in model.parameters():
                p.grad = None
        elif style == "zero_grad(set_to_none=False)":
            opt.zero_grad(set_to_none=False)
        elif style == ".grad.data.zero_()":
            for p in model.parameters():
                p.grad.data.zero_()
    _, probe, found = run(tmp_path, mlp(), step, steps=12)
    assert probe.step_count == 4 and loud(found) == []


def test_a_gan_whose_critic_gets_the_generators_gradients_is_clean(tmp_path):
    torch.manual_seed(0)
    gen, disc = nn.Sequential(nn.Linear(4, 8), nn.Tanh()), nn.Sequential(nn.Linear(8, 1))
    opt_g, opt_d = torch.optim.Adam(gen.parameters(), 1e-3), torch.optim.Adam(disc.parameters(), 1e-3)
    model = nn.ModuleDict({"gen": gen, "disc": disc})
    with Probe(model, [opt_g, opt_d], run_dir=tmp_path) as probe:
        for i in range(5):
            real, z = torch.randn(8, 8), torch.randn(8, 4)
            fake = gen(z)
            opt_d.zero_grad()
            d_loss = F.softplus(-disc(real)).mean() + F.softplus(disc(fake.detach())).mean()
            d_loss.backward()
            opt_d.step()
            opt_g.zero_grad()
            g_loss = F.softplus(-disc(fake)).mean()         # also fills the critic's .grad, cleared above
            g_loss.backward()
            opt_g.step()
    assert "gradients-accumulate" not in loud(report_run(probe.run_path)["findings"])


# -- param-unreached ----------------------------------------------------------------------------------
class WithAux(nn.Module):
    def __init__(self, use_aux=False):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 4)
        self.aux = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))     # the aux head
        self.use_aux = use_aux

    def forward(self, x):
        h = self.body(x)
        return self.head(h) + (self.aux(h) if self.use_aux else 0)


def test_a_layer_the_loss_never_reaches_is_named_with_its_definition_line(tmp_path):
    live, _, found = run(tmp_path, WithAux(), standard(nn.CrossEntropyLoss()), seen_live_at=2)
    assert loud(live) == ["param-unreached"]                # after the first three (diagnostic) steps
    (f,) = [f for f in found if f["code"] == "param-unreached"]
    assert (f["severity"], f["module"]) == ("warning", "aux")           # rolled up: one finding, not four
    assert sorted(p["name"] for p in f["evidence"]["parameters"]) == [
        "aux.0.bias", "aux.0.weight", "aux.2.bias", "aux.2.weight"]
    assert f["location"].endswith(f":{line_of(WithAux.__init__, '# the aux head')}")


def test_a_loss_that_reaches_no_parameter_is_an_error(tmp_path):
    def step(model, opt, x, y, i):
        loss = torch.tensor(F.cross_entropy(model(x), y).item(), requires_grad=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, _, found = run(tmp_path, mlp(), step)
    (f,) = [f for f in found if f["code"] == "param-unreached"]
    assert f["severity"] == "error" and f["evidence"]["none_reached"]
    assert "gradient-chain-broken" in loud(found)           # which names the rebuilt loss


def test_a_head_left_out_of_the_optimizer_or_used_is_clean(tmp_path):
    model = WithAux()
    opt = torch.optim.SGD([p for n, p in model.named_parameters() if not n.startswith("aux.")], lr=0.05)
    _, _, found = run(tmp_path / "left out", model, standard(nn.CrossEntropyLoss()), opt=opt)
    assert loud(found) == []
    _, _, found = run(tmp_path / "used", WithAux(use_aux=True), standard(nn.CrossEntropyLoss()))
    assert loud(found) == []


def test_a_layer_used_only_some_steps_is_not_reported(tmp_path):
    def step(model, opt, x, y, i):
        model.use_aux = i == 2                              # reached on the third diagnostic step only
        standard(nn.CrossEntropyLoss())(model, opt, x, y, i)
    _, _, found = run(tmp_path, WithAux(), step)
    assert loud(found) == []


# -- train-mode-off ----------------------------------------------------------------------------------
def validation_step(train_back):
    def step(model, opt, x, y, i):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            model(x + 1)                                    # the validation pass
        if train_back:
            model.train()
    return step


def test_training_after_validation_without_train_is_found_at_the_validation_line(tmp_path):
    step = validation_step(train_back=False)
    live, _, found = run(tmp_path, mlp(dropout=0.3, bn=True), step, seen_live_at=1)
    assert loud(live) == ["train-mode-off"]
    (f,) = [f for f in found if f["code"] == "train-mode-off"]
    assert f["severity"] == "warning" and f["module"] == "1"
    assert f["evidence"]["classes"] == ["BatchNorm1d", "Dropout"]
    assert f["location"].endswith(f":{line_of(step, '# the validation pass')}")


@pytest.mark.parametrize("case", ["train() after validation", "frozen BatchNorm only", "no dropout or norm",
                                  "PGD attack in eval mode"])
def test_deliberate_eval_modes_are_clean(tmp_path, case):
    model = mlp(dropout=0.3, bn=True) if case != "no dropout or norm" else mlp()
    step = validation_step(train_back=True)
    if case == "frozen BatchNorm only":
        def step(model, opt, x, y, i):
            model.train()
            model[1].eval()                                 # BatchNorm statistics frozen on purpose
            standard(nn.CrossEntropyLoss())(model, opt, x, y, i)
    elif case == "no dropout or norm":
        step = validation_step(train_back=False)
    elif case == "PGD attack in eval mode":
        def step(model, opt, x, y, i):
            model.eval()
            delta = torch.zeros_like(x, requires_grad=True)
            for _ in range(2):
                F.cross_entropy(model(x + delta), y).backward()
                delta = (delta + 0.1 * delta.grad.sign()).detach().requires_grad_(True)
            model.train()
            standard(nn.CrossEntropyLoss())(model, opt, x + delta.detach(), y, i)
    _, _, found = run(tmp_path, model, step)
    assert loud(found) == [], case


def test_eval_mode_set_inside_a_data_parallel_wrapper_is_found(tmp_path):
    inner = mlp(dropout=0.3, bn=True)
    model = nn.DataParallel(inner)                          # on the CPU: calls the module directly

    def step(model, opt, x, y, i):
        standard(nn.CrossEntropyLoss())(model, opt, x, y, i)
        model.module.eval()                                 # the wrapper's own flag stays True
        with torch.no_grad():
            model(x)
    _, _, found = run(tmp_path, model, step, opt=torch.optim.SGD(inner.parameters(), lr=0.05))
    assert loud(found) == ["train-mode-off"]


# -- optimizer-not-stepping ---------------------------------------------------------------------------
def test_zero_grad_between_backward_and_step_is_found(tmp_path):
    def step(model, opt, x, y, i):
        F.cross_entropy(model(x), y).backward()
        opt.zero_grad()
        opt.step()                                          # on cleared gradients
    live, _, found = run(tmp_path, mlp(), step, seen_live_at=0)
    assert loud(live) == ["optimizer-not-stepping"]
    (f,) = [f for f in found if f["code"] == "optimizer-not-stepping"]
    assert f["evidence"]["pattern"] == "cleared" and f["evidence"]["parameters_reached"] == 4
    assert loud(found) == ["optimizer-not-stepping"]        # one bug, one finding


def test_step_without_backward_is_found(tmp_path):
    def step(model, opt, x, y, i):
        F.cross_entropy(model(x), y)                        # computed, never backpropagated
        opt.zero_grad()
        opt.step()
    live, _, found = run(tmp_path, mlp(), step, seen_live_at=1)
    assert loud(live) == ["optimizer-not-stepping"]
    (f,) = [f for f in found if f["code"] == "optimizer-not-stepping"]
    assert f["evidence"]["pattern"] == "no gradients"


def test_scheduler_step_in_place_of_optimizer_step_is_found_live(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        for i in range(4):
            x, y = batch(i)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")             # PyTorch's "lr_scheduler.step() before optimizer"
                scheduler.step()
            if i == 2:
                live = list(probe.findings)
    assert loud(live) == ["optimizer-not-stepping"]
    assert loud(report_run(probe.run_path)["findings"]) == ["optimizer-not-stepping"]


def test_lbfgs_closures_and_a_first_step_before_training_are_clean(tmp_path):
    model = mlp()
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4)

    def step(model, opt, x, y, i):
        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            return loss
        opt.step(closure)
    _, _, found = run(tmp_path / "lbfgs", model, step, steps=3, opt=opt)
    assert loud(found) == []

    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with Probe(model, opt, run_dir=tmp_path / "warm") as probe:
        opt.step()                                          # once, before training (silences a warning)
        for i in range(4):
            standard(nn.CrossEntropyLoss())(model, opt, *batch(i), i)
    assert loud(report_run(probe.run_path)["findings"]) == []


def test_a_hand_written_update_that_never_clears_the_gradient_is_found(tmp_path):
    """Linear regression by hand: w -= lr * w.grad, with no w.grad.zero_() (steps marked with probe.step())."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x = torch.randn(32, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    for clear in (False, True):
        with Probe(model, None, run_dir=tmp_path / str(clear)) as probe:
            for _ in range(5):
                loss = F.mse_loss(model(x), y)
                loss.backward()
                with torch.no_grad():
                    for p in model.parameters():
                        p -= 0.05 * p.grad
                        if clear:
                            p.grad.zero_()
                probe.step()
        found = report_run(probe.run_path)["findings"]
        assert loud(found) == ([] if clear else ["gradients-accumulate"]), clear


def test_a_model_run_wholly_under_reentrant_checkpointing_is_clean(tmp_path):
    """Reentrant checkpointing hides every parameter behind a custom autograd Function: the loss's graph
    shows none of them, which must read as "cannot tell", never as "reaches nothing"."""
    from torch.utils.checkpoint import checkpoint

    class Checkpointed(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = mlp()

        def forward(self, x):
            return checkpoint(self.net, x.requires_grad_(True), use_reentrant=True)
    _, _, found = run(tmp_path, Checkpointed(), standard(nn.CrossEntropyLoss()))
    assert loud(found) == []


def test_two_optimizers_stepped_once_before_training_are_clean(tmp_path):
    """One step() of each optimizer before the loop (to quiet a scheduler warning) is not two empty steps."""
    torch.manual_seed(0)
    model = nn.ModuleDict({"a": nn.Linear(8, 4), "b": nn.Linear(8, 4)})
    opts = [torch.optim.SGD(model["a"].parameters(), lr=0.05), torch.optim.SGD(model["b"].parameters(), lr=0.05)]
    with Probe(model, opts, run_dir=tmp_path) as probe:
        for o in opts:
            o.step()
        for i in range(4):
            x, y = batch(i)
            loss = F.cross_entropy(model["a"](x) + model["b"](x), y)
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
    assert loud(report_run(probe.run_path)["findings"]) == []
