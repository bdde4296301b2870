"""Runtime watchers, each driven by a real Probe on small models: the bug is found with the user's line, the
look-alikes stay clean, the model is left exactly as it was, and a watcher's failure never stops training."""
import copy
import inspect
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as nn_module

import probes.probe
from probes import Probe, ProbeWarning
from probes.findings import location
from probes.watchers import WATCHERS
from probes.watchers._base import SafeWatcher

CODES = {w.code for w in WATCHERS}
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks", "_global_module_registration_hooks",
                "_global_parameter_registration_hooks", "_global_buffer_registration_hooks")


def line_of(obj, text: str) -> str:
    """'file:line' of the line in obj's source that contains `text` (the user's line a finding must name)."""
    lines, start = inspect.getsourcelines(obj)
    hits = [start + i for i, line in enumerate(lines) if text in line]
    assert len(hits) == 1, (text, hits)
    return location(inspect.getsourcefile(obj), hits[0])


def train(model, steps=3, opt=None, step_fn=None, seed=0, **probe_kw):
    """A few SGD steps under a Probe that diagnoses every step; returns the watcher findings."""
    torch.manual_seed(seed)
    opts = opt if opt is not None else torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    opt_list = opts if isinstance(opts, list) else [opts]
    inputs = torch.randn(8, 8)
    with Probe(model, opts, run_dir=probe_kw.pop("run_dir"), diagnose=probe_kw.pop("diagnose", 1),
               **probe_kw) as probe:
        for _ in range(steps):
            out = step_fn(model, inputs) if step_fn else model(inputs)
            loss = (out[0] if isinstance(out, tuple) else out).float().pow(2).mean()
            for o in opt_list:
                o.zero_grad()
            loss.backward()
            for o in opt_list:
                o.step()
    assert probe.error is None, probe.error
    return [f for f in probe.findings if f.code in CODES]


def codes(findings):
    return sorted(f.code for f in findings)


def hook_state(model):
    per_module = {(name, d): len(getattr(m, d)) for name, m in model.named_modules() for d in HOOK_DICTS}
    instance_forward = [name for name, m in model.named_modules() if "forward" in vars(m)]
    return per_module, {g: len(getattr(nn_module, g)) for g in GLOBAL_HOOKS}, instance_forward, \
        torch.overrides._get_current_function_mode_stack()


# -- layer-created-in-forward ------------------------------------------------------------------------

class LayerAssignedInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)

    def forward(self, x):
        self.fc2 = nn.Linear(16, 2)
        return self.fc2(torch.relu(self.fc1(x)))


class LocalLayerBlock(nn.Module):
    def forward(self, x):
        return nn.Linear(8, 8)(x)


class WithLocalLayerBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = LocalLayerBlock()
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.block(x))


def test_layer_assigned_in_forward_is_an_error_at_its_line(tmp_path):
    found = train(LayerAssignedInForward(), run_dir=tmp_path)
    assert codes(found) == ["layer-created-in-forward"]
    f = found[0]
    assert f.severity == "error" and f.module == ""
    assert f.location == line_of(LayerAssignedInForward.forward, "self.fc2 = nn.Linear(16, 2)")
    assert f.evidence["class"] == "Linear" and f.evidence["layer"] == "Linear 16→2"
    assert f.evidence["registered_as"] == "fc2" and f.evidence["numel"] == 34


def test_local_layer_in_a_submodule_names_that_submodule(tmp_path):
    found = train(WithLocalLayerBlock(), run_dir=tmp_path)
    assert codes(found) == ["layer-created-in-forward"]
    assert found[0].module == "block"
    assert found[0].location == line_of(LocalLayerBlock.forward, "nn.Linear(8, 8)(x)")
    assert found[0].evidence["registered_as"] is None and found[0].evidence["numel"] == 72    # a local


class ParameterAssignedInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        self.scale = nn.Parameter(torch.ones(4))
        return self.fc(x) * self.scale


def test_parameter_assigned_in_forward(tmp_path):
    found = train(ParameterAssignedInForward(), run_dir=tmp_path)
    assert codes(found) == ["layer-created-in-forward"]
    assert found[0].evidence["class"] == "nn.Parameter"
    assert found[0].location == line_of(ParameterAssignedInForward.forward, "self.scale = nn.Parameter")
    assert found[0].evidence["registered_as"] == "scale" and found[0].evidence["numel"] == 4


class AssignedLayerAndForgottenHead(LayerAssignedInForward):
    def __init__(self):
        super().__init__()
        self.aux = nn.Linear(8, 2)

    def forward(self, x):
        return super().forward(x) + self.aux(x)


def test_one_bug_one_finding_a_layer_built_in_forward_is_not_also_optimizer_less(tmp_path):
    """fc2's parameters are in no optimizer because forward rebuilds it: layer-created-in-forward says so,
    and param-not-in-optimizer does not repeat it — but still reports a layer truly left out (aux)."""
    model = AssignedLayerAndForgottenHead()
    opt = torch.optim.SGD(model.fc1.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, diagnose=1) as probe:
        for _ in range(3):
            loss = model(torch.randn(8, 8)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    found = {(f.code, f.module) for f in probe.findings if f.severity == "error"}
    assert found == {("layer-created-in-forward", ""), ("param-not-in-optimizer", "aux")}
    from probes.report import report_run
    reported = {(f["code"], f["module"]) for f in report_run(probe.run_path)["findings"] if f["severity"] == "error"}
    assert reported == found            # report (and the dashboard) merge the same way


def test_one_bug_one_finding_the_stale_copy_an_optimizer_holds_after_a_first_forward(tmp_path):
    """A forward before the optimizer is built (a shape check, a dry run) registers fc2's first copy, and the
    optimizer takes it; every later forward replaces fc2, so the optimizer holds tensors the model no longer
    has. That is the same bug: one finding. Stale tensors of another size are still reported."""
    model = LayerAssignedInForward()
    model(torch.randn(2, 8))                                   # fc2 (16->2, 34 values) registered
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path / "a", diagnose=1) as probe:
        for _ in range(3):
            loss = model(torch.randn(8, 8)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    from probes.report import report_run
    assert codes(f for f in probe.findings if f.severity == "error") == ["layer-created-in-forward"]
    assert [f["code"] for f in report_run(probe.run_path)["findings"] if f["severity"] == "error"] == \
        ["layer-created-in-forward"]
    from probes.detectors import explained_elsewhere
    built = [{"code": "layer-created-in-forward", "evidence": {"registered_as": "fc2", "numel": 34}}]
    stale = {"code": "param-not-in-optimizer", "evidence": {"tensors": [{"shape": [2, 16]}, {"shape": [2]}],
                                                            "count": 2}}
    other = {"code": "param-not-in-optimizer", "evidence": {"tensors": [{"shape": [4, 4]}], "count": 1}}
    assert explained_elsewhere(stale, built) and not explained_elsewhere(other, built)


class LazyAndHarmless(nn.Module):
    """Lazy layers materialise in the first forward; a parameter-free nn.ReLU() built there is harmless;
    re-assigning an existing layer (weight tying in forward) builds nothing."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.LazyLinear(16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 16)

    def forward(self, x):
        self.fc3.weight = self.fc2.weight
        return self.fc3(nn.ReLU()(self.fc2(self.fc1(x))))


def test_lazy_layers_and_parameter_free_layers_are_clean(tmp_path):
    model = LazyAndHarmless()
    model(torch.randn(2, 8))                        # materialise before the optimizer, as usual
    assert train(model, run_dir=tmp_path) == []


def test_lazy_layer_materialising_under_the_probe_is_clean(tmp_path):
    model = nn.Sequential(nn.LazyLinear(4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)     # lazy parameters are fine in an optimizer
    assert train(model, opt=opt, run_dir=tmp_path) == []


# -- gradient-chain-broken ---------------------------------------------------------------------------

class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(8, 8)
        self.gate = nn.Linear(8, 1)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.enc(x))
        return self.head(h) * torch.sigmoid(self.gate(h)).mean()


class DetachMid(Gated):
    def forward(self, x):
        h = torch.relu(self.enc(x)).detach()
        return self.head(h) * torch.sigmoid(self.gate(h)).mean()


class ItemGate(Gated):
    def forward(self, x):
        h = torch.relu(self.enc(x))
        g = torch.sigmoid(self.gate(h)).mean().item()
        return self.head(h) * g


class NumpyRoundTrip(Gated):
    def forward(self, x):
        h = torch.relu(self.enc(x))
        h = torch.from_numpy(h.detach().numpy() * 2.0)
        return self.head(h) * torch.sigmoid(self.gate(h)).mean()


class DataAccess(Gated):
    def forward(self, x):
        h = torch.relu(self.enc(x)).data
        return self.head(h)


class RawParameterCut(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(8, 8) / 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = float((x @ self.w).abs().mean()) * x
        return self.head(h)


class StraightThrough(Gated):
    def forward(self, x):
        h = torch.relu(self.enc(x))
        h = h + (torch.round(h) - h).detach()
        return self.head(h) * torch.sigmoid(self.gate(h)).mean()


class UnusedAuxHead(Gated):
    def forward(self, x):
        h = torch.relu(self.enc(x))
        return self.head(h), self.gate(h)


@pytest.mark.parametrize("cls, text, op, params", [
    (DetachMid, ".detach()", ".detach()", ["enc.weight", "enc.bias"]),
    (ItemGate, ".item()", ".item()", ["gate.weight", "gate.bias"]),
    (NumpyRoundTrip, ".numpy()", ".detach()", ["enc.weight", "enc.bias"]),
    (DataAccess, ".data", ".data", ["enc.weight", "enc.bias"]),
    (RawParameterCut, "float(", "float()", ["w"]),
])
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")   # PyTorch's own, about float()
def test_a_cut_in_forward_is_found_at_its_line(tmp_path, cls, text, op, params):
    found = train(cls(), run_dir=tmp_path)
    # the cut, and (a warning) the layers before it that the loss no longer reaches
    assert "gradient-chain-broken" in codes(found) and set(codes(found)) <= {"gradient-chain-broken",
                                                                            "param-unreached"}
    (f,) = [f for f in found if f.code == "gradient-chain-broken"]
    assert f.severity == "error" and f.module == ""
    assert f.location == line_of(cls.forward, text)
    assert f.evidence["op"] == op
    assert sorted(f.evidence["params_without_grad"]) == sorted(params)


@pytest.mark.parametrize("cls", [Gated, StraightThrough])
def test_straight_through_and_gates_are_clean(tmp_path, cls):
    assert train(cls(), run_dir=tmp_path) == []


def test_an_unused_head_is_no_cut_and_is_unreached_only_when_the_optimizer_holds_it(tmp_path):
    # no .detach() anywhere: not a broken chain. Its output is thrown away: held by the optimizer, it never
    # gets a gradient (param-unreached); left out of the optimizer, it is nobody's concern
    model = UnusedAuxHead()
    assert codes(train(model, run_dir=tmp_path / "held")) == ["param-unreached"]
    used = [p for n, p in UnusedAuxHead().named_parameters() if not n.startswith("gate.")]
    model = UnusedAuxHead()
    opt = torch.optim.SGD([p for n, p in model.named_parameters() if not n.startswith("gate.")], lr=0.1)
    assert used and train(model, opt=opt, run_dir=tmp_path / "left out") == []


def test_cut_is_only_looked_for_on_diagnostic_steps(tmp_path):
    # never diagnosed: nothing costly runs, nothing is found
    assert train(DetachMid(), run_dir=tmp_path, diagnose=lambda step: False) == []


# -- forward-called-directly -------------------------------------------------------------------------

def call_forward(model, x):
    return model.forward(x)


class CallsChildForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.enc.forward(x))


def test_model_forward_called_directly(tmp_path):
    model = Gated()
    found = train(model, run_dir=tmp_path, step_fn=call_forward)
    assert codes(found) == ["forward-called-directly"]
    f = found[0]
    assert f.severity == "warning" and f.module == ""
    assert f.location == line_of(call_forward, "model.forward(x)")
    assert f.evidence["called"] == "model.forward"
    assert "forward" not in vars(model)


def test_submodule_forward_called_directly_on_diagnostic_steps(tmp_path):
    model = CallsChildForward()
    found = train(model, run_dir=tmp_path)
    assert codes(found) == ["forward-called-directly"]
    assert found[0].module == "enc"
    assert found[0].location == line_of(CallsChildForward.forward, "self.enc.forward(x)")
    assert not [name for name, m in model.named_modules() if "forward" in vars(m)]


def test_users_own_instance_forward_is_put_back(tmp_path):
    model = Gated()
    mine = model.forward
    model.forward = mine                            # an instance-level forward the user set
    assert train(model, run_dir=tmp_path) == []
    assert vars(model)["forward"] is mine


def test_a_deepcopy_taken_during_the_run_runs_its_own_weights(tmp_path):
    model = nn.Sequential(nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # capture_loss=False: the Probe's own loss hook (a bound method) cannot be deep-copied, see the README
    with Probe(model, opt, run_dir=tmp_path, capture_loss=False):
        ema = copy.deepcopy(model)                  # an EMA copy, as timm's ModelEmaV2 makes
    with torch.no_grad():
        ema[0].weight.zero_()
        ema[0].bias.zero_()
        assert torch.equal(ema(torch.randn(3, 8)), torch.zeros(3, 2))   # not the original model's forward
    assert "forward" not in vars(model)


def test_a_data_parallel_replica_runs_its_own_weights(tmp_path):
    model = nn.Linear(8, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path) as probe:
        replica = model._replicate_for_data_parallel()     # what nn.DataParallel does: __dict__ copied
        replica._parameters = {"weight": torch.zeros(2, 8), "bias": torch.zeros(2)}
        assert torch.equal(replica(torch.randn(3, 8)), torch.zeros(3, 2))
    assert [f for f in probe.findings if f.code in CODES] == []


# -- eval-mode-missing -------------------------------------------------------------------------------

def with_bn_and_dropout():
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))


def validate_without_eval(model, x):
    with torch.no_grad():
        return model(x)


def validate_properly(model, x):
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train()
    return out


def test_validation_without_eval_is_reported_once_at_the_validation_line(tmp_path):
    model = with_bn_and_dropout()

    def step(m, x):
        validate_without_eval(m, x)
        return m(x)
    found = train(model, run_dir=tmp_path, step_fn=step)
    assert codes(found) == ["eval-mode-missing"]
    f = found[0]
    assert f.severity == "warning" and f.module == "1"
    assert f.location == line_of(validate_without_eval, "return model(x)")
    assert f.evidence["modules"] == ["1", "3"]
    assert f.evidence["classes"] == ["BatchNorm1d", "Dropout"]
    assert f.evidence["context"] == "torch.no_grad()"


def test_inference_mode_without_eval(tmp_path):
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))

    def step(m, x):
        with torch.inference_mode():
            m(x)
        return m(x)
    found = train(model, run_dir=tmp_path, step_fn=step)
    assert codes(found) == ["eval-mode-missing"]
    assert found[0].evidence["context"] == "torch.inference_mode()"


def test_validation_in_eval_mode_and_dropout_zero_are_clean(tmp_path):
    model = with_bn_and_dropout()

    def step(m, x):
        validate_properly(m, x)
        return m(x)
    assert train(model, run_dir=tmp_path, step_fn=step) == []

    no_dropout = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.0))

    def step2(m, x):
        with torch.no_grad():
            m(x)
        return m(x)
    assert train(no_dropout, run_dir=tmp_path, step_fn=step2) == []


def test_deliberate_train_mode_under_no_grad_is_clean(tmp_path):
    """Monte-Carlo dropout (eval(), then Dropout back on), BatchNorm recalibration with update_bn on the
    model itself, and an EMA copy validated while the model trains: none is a forgotten model.eval()."""
    import copy

    from torch.optim.swa_utils import update_bn

    def mc_dropout(m, x):
        m.eval()
        for mod in m.modules():
            if isinstance(mod, nn.Dropout):
                mod.train()
        with torch.no_grad():
            samples = torch.stack([m(x) for _ in range(4)])
        m.train()
        return m(x) + 0 * samples.mean()
    assert train(with_bn_and_dropout(), run_dir=tmp_path, step_fn=mc_dropout) == []

    def recalibrate(m, x):
        update_bn([x, x], m)                 # train mode, no_grad, momentum None while it runs
        return m(x)
    assert train(with_bn_and_dropout(), run_dir=tmp_path, step_fn=recalibrate) == []

    def with_ema(m, x):
        ema = copy.deepcopy(m)               # still in training mode, like the model
        with torch.no_grad():
            ema(x)
        return m(x)
    assert train(with_bn_and_dropout(), run_dir=tmp_path, step_fn=with_ema) == []


# -- dead-units --------------------------------------------------------------------------------------

def dead_mlp(dead=12):
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        model[0].bias[:dead] = -10.0               # these units never see a positive pre-activation
    return model


def test_dead_relu_units_are_reported(tmp_path):
    found = train(dead_mlp(), run_dir=tmp_path)
    assert codes(found) == ["dead-units"]
    f = found[0]
    assert f.severity == "warning" and f.module == "1" and f.location is None
    assert f.evidence["units"] == 16 and f.evidence["dead_units"] >= 12     # (a unit may die on its own)
    assert set(range(12)) <= set(f.evidence["dead_indices"])
    assert f.evidence["steps"] == 2 and f.evidence["values_per_unit"] == 16


def test_a_few_dead_units_or_a_healthy_net_are_clean(tmp_path):
    assert train(dead_mlp(dead=4), run_dir=tmp_path) == []
    assert train(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), run_dir=tmp_path) == []


def test_dead_units_need_two_diagnostic_steps(tmp_path):
    assert train(dead_mlp(), steps=1, run_dir=tmp_path) == []


# -- clean models ------------------------------------------------------------------------------------

class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.out = nn.Linear(8, 10, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, x):
        return self.out(self.emb(x.abs().long().clamp(max=9)).mean(1))


class FrozenBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.BatchNorm1d(16))
        self.head = nn.Linear(16, 2)
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        with torch.no_grad():
            feats = self.backbone(x).detach()
        return self.head(feats)


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True), 2)

    def forward(self, x):
        seq = x.unsqueeze(1).repeat(1, 4, 1)
        h, _ = self.gru(seq)
        h, _ = self.lstm(h)
        return self.enc(h).mean(1)


class TwoParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 2)

    def forward(self, x):
        return self.b(F.relu(self.a(x)))


def test_clean_models_raise_nothing(tmp_path):
    for model in (Tied(), FrozenBackbone(), Recurrent()):
        assert train(model, run_dir=tmp_path) == [], type(model).__name__
    model = TwoParts()
    opts = [torch.optim.SGD(model.a.parameters(), lr=0.1), torch.optim.Adam(model.b.parameters())]
    assert train(model, opt=opts, run_dir=tmp_path) == []


# -- lifetime and failures ---------------------------------------------------------------------------

def test_close_leaves_every_module_exactly_as_it_was(tmp_path):
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    before = hook_state(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probe = Probe(model, opt, run_dir=tmp_path, diagnose=1)
    assert "forward" in vars(model)                 # the root forward is wrapped while attached
    model(torch.randn(8, 8)).sum().backward()       # close mid-step: a diagnostic step's hooks are live
    assert "forward" in vars(model[0])
    probe.close()
    probe.close()
    assert hook_state(model) == before
    assert before[2] == [] and before[3] == []


def test_a_failing_watcher_stops_itself_not_training(tmp_path, monkeypatch):
    class Broken(SafeWatcher):
        code = "broken"

        def _attach(self):
            self.handles.append(self.ctx.model.register_forward_hook(self.guard(self._boom)))

        def _boom(self, module, args, output):
            raise RuntimeError("watcher bug")

    monkeypatch.setattr(probes.probe, "WATCHERS", WATCHERS + (Broken,))
    model = dead_mlp()
    before = hook_state(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = train(model, run_dir=tmp_path)
    assert any(issubclass(w.category, ProbeWarning) and "watcher bug" in str(w.message) for w in caught)
    assert codes(found) == ["dead-units"]           # the others went on working
    assert hook_state(model) == before


# -- mixed-devices (a module called with an input on another device) ----------------------------------

class HeadLeftBehind(nn.Module):
    """The head stays on another device than the rest (as a layer replaced after model.to(device) does);
    each module alone is on one device, so only the inputs show it. The meta device stands in for a GPU."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2, device="meta")

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


class TwoStages(nn.Module):
    """Manual model parallelism: the second stage lives elsewhere and the activation is moved to it."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(8, 8)
        self.second = nn.Linear(8, 2, device="meta")

    def forward(self, x):
        return self.second(self.first(x).to("meta"))


def forward_once(model, tmp_path, diagnose=1):
    with Probe(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path, diagnose=diagnose) as probe:
        try:
            model(torch.randn(4, 8))
        except (RuntimeError, NotImplementedError):   # a real device mismatch raises after the hook has seen it
            pass
    return [f for f in probe.findings if f.code == "mixed-devices"]


def test_a_module_called_with_an_input_on_another_device(tmp_path):
    (f,) = forward_once(HeadLeftBehind(), tmp_path)
    assert (f.severity, f.module, f.location) == ("error", "head", line_of(HeadLeftBehind.forward, "self.head("))
    assert f.evidence["module_device"] == "meta" and f.evidence["input_devices"] == ["cpu"]
    assert "model.to(device)" in f.fix


def test_moving_activations_between_stages_is_clean(tmp_path):
    assert forward_once(TwoStages(), tmp_path) == []


def test_input_devices_are_looked_at_only_on_diagnostic_steps(tmp_path):
    model = HeadLeftBehind()
    assert forward_once(model, tmp_path, diagnose=lambda step: False) == []
    assert hook_state(model) == hook_state(HeadLeftBehind())     # no hook left behind
