"""The support matrix: each row trains a real model for real, without a Probe, with a Probe at its defaults
and with a Probe recording everything every step, from the same seed. Every row must

* train bit for bit the same (losses and final weights) with and without the Probe,
* leave no hook of ours behind after close (module hooks, optimizer hooks, global hooks, Tensor.backward),
* raise no ProbeWarning and disable no statistic (a limit of what can be watched is a plain note instead),
* report no error or warning finding on this correct training.
"""
from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as nn_module

from probes import Probe, ProbeWarning
from probes.report import report_run

HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
              "_state_dict_hooks", "_load_state_dict_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks", "_global_module_registration_hooks",
                "_global_parameter_registration_hooks", "_global_buffer_registration_hooks")
EVERYTHING = dict(grad_norm=1, update_size=1, activations=1, memory=1, tree=1, diagnose=1)
STEPS = 6


def data(n=STEPS, b=16, d=12, classes=4, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, d, generator=g).to(dtype), torch.randint(0, classes, (b,), generator=g))
            for _ in range(n)]


def mlp(d=12, classes=4):
    return nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, classes))


def plain_loop(model, opt, batches, loss_fn=None, sched=None):
    """The ordinary loop; returns the losses."""
    loss_fn = loss_fn or (lambda out, y: F.cross_entropy(out.float(), y))
    losses = []
    for x, y in batches:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.detach().double().item())
    return losses


# -- the rows: each builds (model, optimizer, train) from the seed; train(model, opt) -> losses ---------------
def row_dtype(dtype):
    def build():
        model = mlp().to(dtype)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        return model, opt, lambda m, o: plain_loop(m, o, data(dtype=dtype))
    return build


def row_autocast():
    model = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train(m, o):
        losses = []
        for x, y in data():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = m(x)
            loss = F.cross_entropy(out.float(), y)
            o.zero_grad()
            loss.backward()
            o.step()
            losses.append(loss.item())
        return losses
    return model, opt, train


class ComplexNet(nn.Module):
    """A complex-valued layer (as in signal processing models) with a real read-out."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Linear(12, 16, dtype=torch.cfloat)
        self.out = nn.Linear(32, 4)

    def forward(self, x):
        z = self.mix(torch.complex(x, x.flip(-1)))
        return self.out(torch.cat([z.real, z.imag], dim=-1))


def row_complex():
    model = ComplexNet()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda m, o: plain_loop(m, o, data())


def row_channels_last():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(8, 3, 12, 12, generator=g).to(memory_format=torch.channels_last),
                torch.randint(0, 4, (8,), generator=g)) for _ in range(STEPS)]
    return model, opt, lambda m, o: plain_loop(m, o, batches)


class BagOfWords(nn.Module):
    def __init__(self, sparse=True):
        super().__init__()
        self.emb = nn.Embedding(200, 16, sparse=sparse)
        self.head = nn.Linear(16, 4)

    def forward(self, ids):
        return self.head(self.emb(ids).mean(1))


def row_sparse(optimizer):
    def build():
        model = BagOfWords()
        if optimizer == "SparseAdam":
            opts = [torch.optim.SparseAdam(list(model.emb.parameters()), lr=1e-2),
                    torch.optim.Adam(model.head.parameters(), lr=1e-2)]
        else:
            opts = [torch.optim.SGD(model.parameters(), lr=0.1)]
        g = torch.Generator().manual_seed(3)
        batches = [(torch.randint(0, 200, (8, 10), generator=g), torch.randint(0, 4, (8,), generator=g))
                   for _ in range(STEPS)]

        def train(m, o):
            losses = []
            for x, y in batches:
                loss = F.cross_entropy(m(x), y)
                for opt in o:
                    opt.zero_grad()
                loss.backward()
                for opt in o:
                    opt.step()
                losses.append(loss.item())
            return losses
        return model, opts, train
    return build


def row_vmap():
    """Per-sample losses with torch.func.vmap over functional_call (as in per-sample-gradient recipes)."""
    from torch.func import functional_call, vmap
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train(m, o):
        losses = []
        for x, y in data():
            params = dict(m.named_parameters())

            def one(xi, yi):
                out = functional_call(m, params, (xi.unsqueeze(0),))
                return F.cross_entropy(out, yi.unsqueeze(0))
            m.eval()                    # dropout under vmap needs randomness="different"; keep it off
            loss = vmap(one)(x, y).mean()
            m.train()
            o.zero_grad()
            loss.backward()
            o.step()
            losses.append(loss.item())
        return losses
    return model, opt, train


def row_func_grad():
    """Gradients from torch.func.grad, written to .grad by hand, then an ordinary optimizer step."""
    from torch.func import functional_call, grad
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def train(m, o):
        losses = []
        for x, y in data():
            params = {k: v.detach() for k, v in m.named_parameters()}

            def loss_of(p):
                return F.cross_entropy(functional_call(m, p, (x,)), y)
            grads = grad(loss_of)(params)
            for name, p in m.named_parameters():
                p.grad = grads[name]
            o.step()
            losses.append(loss_of(params).item())
        return losses
    return model, opt, train


class WithScripted(nn.Module):
    def __init__(self):
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.encoder = torch.jit.script(nn.Sequential(nn.Linear(12, 32), nn.ReLU()))
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        return self.head(self.encoder(x))


def row_jit_script():
    model = WithScripted()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda m, o: plain_loop(m, o, data())


def row_compile():
    model = mlp()
    compiled = torch.compile(model, backend="aot_eager")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    return compiled, opt, lambda m, o: plain_loop(m, o, data())


class Checkpointed(nn.Module):
    def __init__(self, reentrant):
        super().__init__()
        self.reentrant = reentrant
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(32, 32), nn.GELU()) for _ in range(3))
        self.inp, self.out = nn.Linear(12, 32), nn.Linear(32, 4)

    def forward(self, x):
        from torch.utils.checkpoint import checkpoint
        x = self.inp(x)
        for block in self.blocks:
            x = checkpoint(block, x, use_reentrant=self.reentrant)
        return self.out(x)


def row_checkpoint(reentrant):
    def build():
        model = Checkpointed(reentrant)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda m, o: plain_loop(m, o, data())
    return build


def row_lbfgs():
    model = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 4))
    opt = torch.optim.LBFGS(model.parameters(), lr=0.5, max_iter=4, history_size=5)

    def train(m, o):
        losses = []
        for x, y in data():
            def closure():
                o.zero_grad()
                loss = F.cross_entropy(m(x), y)
                loss.backward()
                return loss
            losses.append(float(o.step(closure)))
        return losses
    return model, opt, train


def row_optimizer(make):
    def build():
        model = mlp()
        return model, make(model.parameters()), lambda m, o: plain_loop(m, o, data())
    return build


def row_warmup():
    """Linear warm-up from lr 0 (the first step does not move the weights), then constant."""
    model = mlp()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 3))
    return model, opt, lambda m, o: plain_loop(m, o, data(n=10), sched=sched)


def row_parametrization(kind):
    def build():
        from torch.nn.utils import parametrizations
        model = mlp()
        wrap = parametrizations.spectral_norm if kind == "spectral_norm" else parametrizations.weight_norm
        wrap(model[0])
        wrap(model[3])
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda m, o: plain_loop(m, o, data())
    return build


def row_qat():
    import torch.ao.quantization as q
    model = nn.Sequential(q.QuantStub(), nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 4), q.DeQuantStub())
    model.qconfig = q.get_default_qat_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = q.prepare_qat(model.train())
    return model, torch.optim.SGD(model.parameters(), lr=0.05), lambda m, o: plain_loop(m, o, data())


def row_data_parallel():
    model = nn.DataParallel(mlp())          # no GPU: DataParallel runs the module itself
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda m, o: plain_loop(m, o, data())


def row_ema():
    """An EMA copy made with deepcopy while the Probe is attached, updated each step, validated in eval mode."""
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    val = data(n=1, seed=9)[0]

    def train(m, o):
        ema = copy.deepcopy(m)
        for p in ema.parameters():
            p.requires_grad_(False)
        losses = plain_loop_with(m, o, lambda: _ema_update(ema, m))
        ema.eval()
        with torch.no_grad():
            losses.append(F.cross_entropy(ema(val[0]), val[1]).item())
        return losses
    return model, opt, train


def _ema_update(ema, model, decay=0.9):
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.mul_(decay).add_(p, alpha=1 - decay)


def plain_loop_with(model, opt, after_step):
    losses = []
    for x, y in data():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        after_step()
        losses.append(loss.item())
    return losses


def row_swa():
    """swa_utils.AveragedModel (a deep copy inside) and update_bn (BatchNorm recalibration in train mode)."""
    from torch.optim.swa_utils import AveragedModel, update_bn
    model = nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def train(m, o):
        swa = AveragedModel(m)
        losses = plain_loop_with(m, o, lambda: swa.update_parameters(m))
        update_bn([x for x, _ in data(n=2, seed=5)], swa)
        swa.eval()
        with torch.no_grad():
            x, y = data(n=1, seed=9)[0]
            losses.append(F.cross_entropy(swa(x), y).item())
        return losses
    return model, opt, train


ROWS = {
    "float64": row_dtype(torch.float64), "float16": row_dtype(torch.float16),
    "bfloat16": row_dtype(torch.bfloat16), "autocast-bf16": row_autocast, "complex": row_complex,
    "channels_last": row_channels_last, "sparse-SparseAdam": row_sparse("SparseAdam"),
    "sparse-SGD": row_sparse("SGD"), "vmap": row_vmap, "func-grad": row_func_grad,
    "jit-script-submodule": row_jit_script, "torch-compile": row_compile,
    "checkpoint": row_checkpoint(False), "checkpoint-reentrant": row_checkpoint(True), "LBFGS": row_lbfgs,
    "SGD": row_optimizer(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "Adam-foreach": row_optimizer(lambda p: torch.optim.Adam(p, lr=1e-3, foreach=True)),
    "Adam-fused": row_optimizer(lambda p: torch.optim.Adam(p, lr=1e-3, fused=True)),
    "AdamW-foreach": row_optimizer(lambda p: torch.optim.AdamW(p, lr=1e-3, foreach=True)),
    "AdamW-fused": row_optimizer(lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True)),
    "Adagrad": row_optimizer(lambda p: torch.optim.Adagrad(p, lr=0.05)),
    "RMSprop": row_optimizer(lambda p: torch.optim.RMSprop(p, lr=1e-3)),
    "warmup-from-lr-0": row_warmup, "spectral_norm": row_parametrization("spectral_norm"),
    "weight_norm": row_parametrization("weight_norm"), "qat": row_qat, "DataParallel": row_data_parallel,
    "EMA-deepcopy": row_ema, "swa_utils": row_swa,
}


def hook_state(model, opts):
    per_module = {(name, d): len(getattr(m, d, {})) for name, m in model.named_modules() for d in HOOK_DICTS
                  if not isinstance(m, torch.jit.ScriptModule)}
    per_opt = [(len(o._optimizer_step_pre_hooks), len(o._optimizer_step_post_hooks)) for o in opts]
    instance_forward = [name for name, m in model.named_modules()
                        if not isinstance(m, torch.jit.ScriptModule) and "forward" in vars(m)]
    return (per_module, per_opt, {g: len(getattr(nn_module, g)) for g in GLOBAL_HOOKS}, instance_forward,
            torch.Tensor.backward, torch.overrides._get_current_function_mode_stack())


def _train(row, settings, run_dir):
    torch.manual_seed(0)
    model, opt, train = ROWS[row]()
    opts = opt if isinstance(opt, list) else [opt]
    before = hook_state(model, opts)
    probe = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if settings is None:
            losses = train(model, opt)
        else:
            probe = Probe(model, opt, run_dir=run_dir, **settings)
            try:
                losses = train(model, opt)
            finally:
                probe.close()
    ours = [str(w.message) for w in caught if issubclass(w.category, ProbeWarning)]
    after = hook_state(model, opts)
    weights = [t.detach().clone() for t in model.state_dict().values()]
    return losses, weights, probe, ours, before == after


@pytest.mark.parametrize("row", list(ROWS))
def test_support_matrix(row, tmp_path):
    losses, weights, _, _, _ = _train(row, None, tmp_path)
    assert losses and all(math.isfinite(v) for v in losses), losses
    for name, settings in (("defaults", {}), ("everything", EVERYTHING)):
        got, got_weights, probe, warned, hooks_gone = _train(row, settings, tmp_path / name)
        assert warned == [], warned
        assert probe.error is None and probe.guard.failed == {}, (probe.error, probe.guard.failed)
        assert got == losses, f"{name}: the losses changed under the Probe"
        assert len(got_weights) == len(weights) and all(torch.equal(a, b) for a, b in zip(got_weights, weights)), \
            f"{name}: the weights changed under the Probe"
        assert hooks_gone, f"{name}: a hook of ours is left after close"
        assert probe.step_count >= 1
        result = report_run(probe.run_path)
        loud = [(f["code"], f["module"], f["title"]) for f in result["findings"] if f["severity"] != "info"]
        assert loud == [], f"{name}: {loud}"


def test_a_deep_copy_made_while_attached_runs_none_of_our_code_and_pickles(tmp_path):
    import io
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
        plain_loop(model, opt, data(n=2))
        ema = copy.deepcopy(model)
        hooks = [h for m in ema.modules() for d in HOOK_DICTS if not d.endswith(("_always_called", "_with_kwargs"))
                 for h in getattr(m, d).values()]
        assert hooks and all(getattr(h, "__name__", "") == "_inert" for h in hooks)
        torch.save(ema, io.BytesIO())              # a whole-model save of the copy does not meet the Probe
        ema.eval()
        with torch.no_grad():
            ema(data(n=1)[0][0])
        plain_loop(model, opt, data(n=2))
    assert probe.step_count == 4 and probe.findings == []
