"""The guard: every hook of the Probe runs through it, and a failure stays inside one statistic."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import probes
from probes import Probe, ProbeWarning, RunReader
from probes.guard import Guard
from probes.quantities import GradNorm

PACKAGE = Path(probes.__file__).resolve().parent
EVERYTHING = dict(grad_norm=1, update_size=1, activations=1, memory=1, tree=1, diagnose=1)


def test_no_hook_is_registered_anywhere_but_through_the_guard():
    """By construction: register_*_hook( is called in probes/guard.py only."""
    call = re.compile(r"\.register_\w*hook\(|register_module_\w*hook\(")
    offenders = [f"{path.relative_to(PACKAGE)}:{i}" for path in PACKAGE.rglob("*.py") if path.name != "guard.py"
                 for i, line in enumerate(path.read_text().splitlines(), 1) if call.search(line)]
    assert offenders == []
    assert call.search((PACKAGE / "guard.py").read_text())      # the pattern does find a registration


def loop(model, opt, steps=6):
    torch.manual_seed(3)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(torch.randn(8, 6)), torch.randint(0, 3, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def test_a_failing_statistic_stops_alone_warns_once_and_the_rest_records(tmp_path, monkeypatch):
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = loop(model, opt)

    def broken(self, ctx, idx):
        raise RuntimeError("boom in grad norms")

    monkeypatch.setattr(GradNorm, "before_update", broken)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
            losses = loop(model, opt)
    assert losses == expected
    ours = [str(w.message) for w in caught if issubclass(w.category, ProbeWarning)]
    assert len(ours) == 1 and "grad_norm stopped" in ours[0] and "boom in grad norms" in ours[0]
    assert caught[0].filename == __file__               # at the user's line (the loop's opt.step())
    assert probe.error is None and set(probe.guard.failed) == {"grad_norm"}
    with RunReader(probe.run_path) as reader:
        assert reader.step_count() == 6
        assert reader.scalars()["loss"].notna().sum() == 6
        assert reader.series("grad_norm").empty
        assert reader.series("update_norm").notna().all().all() and len(reader.series("update_norm")) == 6
        assert reader.series("act_mean").shape[0] == 6
        assert reader.meta()["not_recorded"] == {"grad_norm": "RuntimeError: boom in grad norms"}


def test_a_failing_module_hook_never_reaches_the_forward(tmp_path, monkeypatch):
    """The activations hook runs inside the user's forward; when it raises, the forward returns as usual."""
    from probes.quantities import activations
    monkeypatch.setattr(activations, "sample_view", lambda t: 1 / 0)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
            losses = loop(model, opt, steps=3)
    assert len(losses) == 3
    assert list(probe.guard.failed) == ["activations"] and "ZeroDivisionError" in probe.guard.failed["activations"]
    assert sum(issubclass(w.category, ProbeWarning) for w in caught) == 1
    assert probe.step_count == 3


def test_warnings_turned_into_errors_do_not_turn_a_failure_into_a_crash(tmp_path, monkeypatch):
    def broken(self, ctx, idx):
        raise RuntimeError("boom")

    monkeypatch.setattr(GradNorm, "before_update", broken)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # python -W error
        with Probe(model, opt, run_dir=tmp_path, **EVERYTHING) as probe:
            loop(model, opt, steps=3)
    assert probe.step_count == 3 and "grad_norm" in probe.guard.failed


def test_guard_calls_wraps_and_disables_by_name():
    guard = Guard()
    dropped = []
    guard.on_fail("a", lambda: dropped.append("a"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert guard.call("a", lambda: 1 / 0) is None
        assert guard.call("a", lambda: 5) is None          # stays off
        assert guard.wrap("b", lambda x: x + 1)(1) == 2      # another name is untouched
    assert dropped == ["a"] and list(guard.failed) == ["a"] and "ZeroDivisionError" in guard.failed["a"]
    assert len(caught) == 1


def test_a_failure_inside_an_optimizer_hook_detaches_without_breaking_the_step(tmp_path, monkeypatch):
    """Optimizer.step() runs its hooks straight from their dicts: a watcher (or the recording itself) that
    fails in one and removes its hooks there must not make the user's step raise "OrderedDict mutated
    during iteration"; the removed hooks go inert at once and leave their dicts at the next forward."""
    from probes.watchers.optimizer_not_stepping import OptimizerNotStepping

    def broken(self, i, args, kwargs):
        raise RuntimeError("boom in a step hook")

    monkeypatch.setattr(OptimizerNotStepping, "_before_step", broken)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    expected = loop(model, opt)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with Probe(model, opt, run_dir=tmp_path) as probe:
            hooks = len(opt._optimizer_step_pre_hooks)
            losses = loop(model, opt)
            assert len(opt._optimizer_step_pre_hooks) == hooks - 1     # gone after the next forward
    assert losses == expected and set(probe.guard.failed) == {"optimizer-not-stepping"}
    assert len(opt._optimizer_step_pre_hooks) == len(opt._optimizer_step_post_hooks) == 0

    # the whole recording failing in a step hook: every hook of the Probe goes, from inside that hook
    def halting(self, i):
        raise RuntimeError("boom in the recording")

    monkeypatch.setattr(Probe, "_before_update", halting)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        with Probe(model, opt, run_dir=tmp_path / "halt") as probe:
            losses = loop(model, opt)
    assert losses == expected and probe.error and "boom in the recording" in probe.error
    assert len(opt._optimizer_step_pre_hooks) == len(opt._optimizer_step_post_hooks) == 0
