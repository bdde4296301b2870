"""Where gradients go between backward() and optimizer.step(): three loop bugs seen from the live tensors.

* gradients-accumulate: `.grad` is never cleared between two steps of an optimizer (`zero_grad()` missing, or
  called where it does not run between steps), so each step applies the sum of every gradient so far. After
  an optimizer steps (on a diagnostic step), a few of its smallest parameters are watched: a hook on each
  sees every new gradient before it is added, and checks that `.grad` still holds exactly what the step
  applied plus what arrived since. If nothing cleared it by the next step of that optimizer, the gradients
  accumulate across steps. Deliberate accumulation (N backward passes, step, zero_grad) clears between
  steps, so it stays clean; so does a GAN, whose critic gets gradients from the generator's backward and
  clears them before its own.
* param-unreached: trainable parameters an optimizer holds that no backward of the step reaches (the loss's
  graph, walked to its leaves on diagnostic steps), on every one of the first diagnostic steps: a layer
  defined and never used, a branch whose output is thrown away. An error when the loss reaches none.
* optimizer-not-stepping: `step()` runs on gradients already cleared (`zero_grad()` between backward() and
  step()), or with no gradient at all (backward() missing), or backward() and zero_grad() run while the
  optimizer never steps. The run check (probes/checks/training.py) adds the end-of-run verdict: backward
  ran, no optimizer ever stepped, and no weight changed.
"""
from __future__ import annotations

import math

import torch

from ..findings import Finding
from ..guard import closure_of
from ..tree import attribute_location, class_location
from ._base import SafeWatcher, frame_location, graph_walk, stepping_optimizer, user_frames

SENTINELS = 3                   # parameters watched per optimizer for gradients-accumulate
UNREACHED_STEPS = 3             # diagnostic steps a parameter must be unreached on before it is reported


def _held(ctx) -> list[tuple[str, torch.nn.Parameter, int]]:
    """(name, parameter, optimizer index) of the model's trainable parameters that an optimizer holds."""
    owner = {}
    for i, opt in enumerate(ctx.optimizers):
        for g in opt.param_groups:
            for p in g["params"]:
                owner.setdefault(id(p), i)
    out, seen = [], set()
    for name, p in ctx.model.named_parameters():
        if id(p) in owner and id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            out.append((name, p, owner[id(p)]))
    return out


def _opt_params(opt) -> list:
    return [p for g in opt.param_groups for p in g["params"] if isinstance(p, torch.Tensor) and p.requires_grad]


def _has_closure(args, kwargs) -> bool:
    return closure_of(args, kwargs) is not None


class _StepHooks(SafeWatcher):
    """A watcher with a pre- and post-step hook on every optimizer (on the one that really steps). The pre
    hook runs when the step's gradients are final (after a closure that computes them: Lightning, LBFGS)."""

    before = "step_ready"

    def _hook_optimizers(self) -> None:
        for i, opt in enumerate(self.ctx.optimizers):
            target = stepping_optimizer(opt)
            self.hook(target, self.before, lambda o, args, kwargs, i=i: self._before_step(i, args, kwargs))
            self.hook(target, "step_post", lambda o, args, kwargs, i=i: self._after_step(i))

    def _before_step(self, i: int, args, kwargs) -> None:
        pass

    def _after_step(self, i: int) -> None:
        pass


class GradientsAccumulate(_StepHooks):
    code = "gradients-accumulate"

    def _attach(self) -> None:
        self._reported = False
        self._step = 0
        self._watch: dict[int, list[dict]] = {}        # optimizer -> the parameters watched since its last step
        self._backward_at: str | None = None
        self._hook_optimizers()

    def _step_start(self, step: int) -> None:
        self._step = step

    def _backward(self, loss) -> None:
        if self._watch:
            self._backward_at = frame_location(next(user_frames(2), None))

    MANUAL = -1                 # steps marked by hand (probe.step()): the update is the user's own code

    def _step_end(self, step: int) -> None:
        if self.ctx.optimizers:
            return
        # a hand-written update (w -= lr * w.grad; probe.step()): judged, then watched, at each step's end
        self._before_step(self.MANUAL, (), {})
        self._step = step + 1
        self._after_step(self.MANUAL)

    def _after_step(self, i: int) -> None:
        self._stop(i)
        # the Probe's own hook ran first and may have begun the next step: self._step is the step to come
        if self._reported or not self.ctx.diagnose(self._step):
            return
        names = {id(p): n for n, p in self.ctx.model.named_parameters()}
        held = (_opt_params(self.ctx.optimizers[i]) if i != self.MANUAL else
                [p for p in self.ctx.model.parameters() if p.requires_grad])
        params = [p for p in held if p.grad is not None and not p.grad.is_sparse and p.grad.layout == torch.strided]
        watched = []
        for p in sorted(params, key=lambda p: p.numel())[:SENTINELS * 2]:
            saved = p.grad.detach().clone()
            if not bool(saved.any()):
                continue                # a zero gradient cannot tell cleared from kept
            state = {"param": p, "name": names.get(id(p), "?"), "expected": saved, "applied_norm": _norm(saved),
                     "arrived": 0, "cleared": False, "handle": None}
            state["handle"] = self._guard.hook(self.code, p, "tensor", self._arrives(state))
            watched.append(state)
            if len(watched) == SENTINELS:
                break
        self._watch[i] = watched

    def _arrives(self, state: dict):
        def hook(grad):
            if state["cleared"]:
                return None
            now = state["param"].grad
            if now is None or now.shape != state["expected"].shape or not torch.equal(now, state["expected"]):
                state["cleared"] = True  # set to None, zeroed, replaced or rescaled: not simply kept
                return None
            state["expected"] = now + grad              # what .grad holds once this one is added
            state["arrived"] += 1
            return None
        return hook

    def _before_step(self, i: int, args, kwargs) -> None:
        watched = self._watch.get(i) or []
        if self._reported or not watched:
            return self._stop(i)
        arrived = [s for s in watched if s["arrived"]]
        if not arrived or any(s["cleared"] for s in watched):
            return self._stop(i)
        kept = []
        for s in arrived:
            g = s["param"].grad
            if g is None or not bool(g.any()):
                return self._stop(i)    # cleared after the last backward: optimizer-not-stepping's case
            kept.append({"name": s["name"], "applied_norm": s["applied_norm"], "now_norm": _norm(g),
                         "new_gradients": s["arrived"]})
        self._stop(i)
        self._emit(i, kept)

    def _stop(self, i: int) -> None:
        for s in self._watch.pop(i, []):
            if s["handle"] is not None:
                s["handle"].remove()

    def _detach(self) -> None:
        for i in list(getattr(self, "_watch", {})):
            self._stop(i)

    def _emit(self, i: int, kept: list[dict]) -> None:
        self._reported = True
        manual = i == self.MANUAL
        cls = type(self.ctx.optimizers[i]).__name__ if not manual else "the hand-written update"
        stepper = f"{cls}.step()" if not manual else "the update"
        first = kept[0]
        growth = first["now_norm"] / first["applied_norm"] if first["applied_norm"] else math.nan
        self.ctx.emit(Finding(
            code=self.code, severity="error",
            title=(f"Gradients are never cleared between {'optimizer ' if not manual else ''}steps: {cls} "
                   f"applies the sum of every gradient so far"),
            detail=(f"At step {self._step}, the gradient of {first['name']} that {stepper} applied at the "
                    f"previous step was still in .grad when the next backward() added to it, and nothing cleared "
                    f"it before this step (the same for {len(kept)} watched parameter(s)). PyTorch adds every "
                    f"backward's gradient into .grad, so without optimizer.zero_grad() between steps each update "
                    f"follows the stale, growing sum of all past gradients rather than the current batch: here "
                    f"‖grad‖ went from {first['applied_norm']:.3g} to {first['now_norm']:.3g} "
                    f"({growth:.2g}x). The loss oscillates or diverges, and a smaller learning rate only hides it."),
            module="", location=self._backward_at,
            evidence={"step": self._step, "optimizer": i, "optimizer_class": cls, "parameters": kept,
                      "growth": growth},
            fix=("Call optimizer.zero_grad() once per optimizer step — before loss.backward() (or right after "
                 "optimizer.step()) inside the batch loop. To accumulate over N micro-batches on purpose, call "
                 "step() and zero_grad() together every N backward passes." if not manual else
                 "Clear each gradient after the update (w.grad = None, or w.grad.zero_() under torch.no_grad()) "
                 "or before every backward().")))


def _norm(t: torch.Tensor) -> float:
    return float(t.detach().float().norm())


class ParamUnreached(_StepHooks):
    code = "param-unreached"

    def _attach(self) -> None:
        self._done = not self.ctx.optimizers       # steps marked by hand: nothing "held" to compare with
        self._judged: dict[str, int] = {}          # steps on which the parameter's optimizer stepped, walked
        self._missed: dict[str, int] = {}          # ... and no backward reached it
        self._checked = 0
        self._active = False
        self._reached: set[int] = set()
        self._walked = 0
        self._unknown = False
        self._stepped: set[int] = set()            # optimizers that stepped in this step
        self._hook_optimizers()

    def _step_start(self, step: int) -> None:
        self._active = not self._done and bool(self.ctx.diagnose(step))
        self._reached, self._walked, self._unknown, self._stepped = set(), 0, False, set()

    def _before_step(self, i: int, args, kwargs) -> None:
        self._stepped.add(i)

    def _backward(self, loss) -> None:
        if not self._active or not loss.requires_grad:
            return                      # no graph at all: backward is about to raise (gradient-chain-broken)
        walk = graph_walk(self.ctx, loss)   # a leaf loss (torch.tensor(..., requires_grad=True)) reaches nothing
        if walk.leaves is None or walk.opaque:
            self._unknown = True        # too large, or parameters may hide behind a custom Function
            return
        self._reached |= walk.leaves
        self._walked += 1

    def _step_end(self, step: int) -> None:
        if not self._active or not self._walked or self._unknown:
            return
        # judged only for the optimizers that stepped: a critic trained five times per generator step
        # leaves the generator out of most steps, on purpose
        held = [(n, p, i) for n, p, i in _held(self.ctx) if i in self._stepped]
        if not held:
            return
        unreached = {name for name, p, _ in held if id(p) not in self._reached}
        if len(unreached) == len(held):
            return self._emit(step, held, unreached, none_reached=True)
        self._checked += 1
        for name, _, _ in held:
            self._judged[name] = self._judged.get(name, 0) + 1
            self._missed[name] = self._missed.get(name, 0) + (name in unreached)
        never = {n for n in self._judged if self._missed[n] == self._judged[n]}
        if not never:
            self._done = True           # every held parameter was reached at least once: nothing to say
            return
        due = {n for n in never if self._judged[n] >= UNREACHED_STEPS}
        if due:
            self._emit(step, _held(self.ctx), due, none_reached=False)

    def _emit(self, step: int, held, unreached: set[str], none_reached: bool) -> None:
        self._done = True
        params = {name: p for name, p, _ in held}
        groups = _rolled_up(self.ctx.model, sorted(unreached, key=list(params).index))
        if not groups:
            return
        numel = sum(params[n].numel() for n in unreached)
        cuts = [f for f in self.ctx.reported() if f.code == "gradient-chain-broken"]
        found = []
        for module, names in groups.items():
            cut = next((f for f in cuts if set(names) & set(f.evidence.get("params_without_grad") or [])), None)
            why = (f" They are cut off from the loss at {cut.location or 'a line in forward'}"
                   f"{' by ' + cut.evidence['op'] if cut.evidence.get('op') else ''} (see gradient-chain-broken)."
                   if cut is not None else "")
            found.append(Finding(
                code=self.code, severity="error" if none_reached else "warning",
                title=(f"The loss reaches none of the {len(held)} trainable parameters the optimizer holds"
                       if none_reached else
                       f"{module or 'The model'}: {len(names)} trainable parameter(s) held by the optimizer "
                       f"never get a gradient: the loss does not reach them"),
                detail=((f"At step {step} no backward reached any parameter the optimizer holds: nothing is "
                         f"trained. The loss was computed from values cut off from the model (.detach(), "
                         f".item(), a new tensor) or from something else than the model's outputs.")
                        if none_reached else
                        (f"On {min(self._judged[n] for n in names)} diagnostic steps, no backward pass reached "
                         f"{_list(names)} ({sum(params[n].numel() for n in names):,} values"
                         + (f"; {numel:,} in all" if len(groups) > 1 else "")
                         + "): the optimizer holds them, yet they never get a gradient and never change."
                         + (why or " Usually a layer defined in __init__ that forward never uses, or a branch whose "
                                   "output is thrown away or cut from the graph before the loss."))),
                module=module, location=_where(self.ctx.model, module),
                evidence={"step": step, "parameters": [{"name": n, "shape": list(params[n].shape),
                                                        "numel": params[n].numel()} for n in names][:20],
                          "count": len(names), "held": len(held), "steps_checked": max(self._checked, 1),
                          "none_reached": none_reached},
                fix=("Compute the loss from the model's outputs so that backward reaches the parameters."
                     if none_reached else
                     "Use the layer in forward (and its output in the loss), or remove it; if it must stay but "
                     "not train, leave it out of the optimizer or call requires_grad_(False) on it.")))
            if none_reached:
                break
        for f in found:
            self.ctx.emit(f)


def _list(names: list[str], limit: int = 5) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def _rolled_up(model, names: list[str]) -> dict[str, list[str]]:
    """Group parameter names by the outermost module all of whose trainable parameters are among them.

    A parameter whose own module has other parameters the loss does reach is left out: that module runs, and
    uses this one only on some inputs (a mask token for masked inputs, a padding or type embedding) — a
    conditional path, not a layer nobody uses."""
    wanted = set(names)
    trainable: dict[str, set[str]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            parts = name.split(".")[:-1]
            for k in range(len(parts) + 1):
                trainable.setdefault(".".join(parts[:k]), set()).add(name)
    out: dict[str, list[str]] = {}
    for name in names:
        module = name.rpartition(".")[0]
        if not trainable.get(module, set()) <= wanted:
            continue
        while module:
            parent = module.rpartition(".")[0]
            if not trainable.get(parent, set()) <= wanted:
                break
            module = parent
        out.setdefault(module, []).append(name)
    return out


def _where(model, module: str) -> str | None:
    """The line that assigns the module in its parent's __init__ (or the parent's class)."""
    if not module:
        return class_location(type(model))
    parent_path, _, attr = module.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
    except AttributeError:
        return class_location(type(model))
    return attribute_location(type(parent), attr) if not type(parent).__module__.startswith("torch.") \
        else _where(model, parent_path)


class OptimizerNotStepping(_StepHooks):
    code = "optimizer-not-stepping"

    before = "step_pre"      # a backward inside step() (a closure) is part of the step, not one without it

    def _attach(self) -> None:
        self._reported = False
        self._stepped = 0                   # optimizer steps seen, all optimizers
        self._step = 0
        self._backwards = 0                 # backward calls in the step being built
        self._reached: set[int] = set()
        self._walked = False
        self._empty_steps: dict[int, int] = {}   # optimizer -> steps in a row with no gradient and no backward
        self._before: list | None = None    # what the previous backward reached (no step yet)
        self._cleared_cycles = 0
        self._backward_at: str | None = None
        self._in_step = False               # between an optimizer's pre- and post-step hooks (a closure runs)
        self._hook_optimizers()

    def _step_start(self, step: int) -> None:
        self._step = step
        self._backwards, self._reached, self._walked = 0, set(), False

    def _backward(self, loss) -> None:
        self._backwards += 1
        if self._reported or self._in_step or loss.grad_fn is None or not self.ctx.diagnose(self._step):
            return
        self._backward_at = frame_location(next(user_frames(2), None))
        walk = graph_walk(self.ctx, loss)
        if walk.leaves is None:
            return
        self._reached |= walk.leaves
        self._walked = True
        if self._stepped or self._cleared_cycles > 4:
            return
        # no optimizer has stepped yet: were the gradients the previous backward made cleared since?
        if self._before:
            if all(p.grad is None or (p.numel() <= 1 << 16 and not bool(p.grad.any())) for p in self._before):
                self._cleared_cycles += 1
                if self._cleared_cycles >= 2:
                    return self._emit_never()
        held = [p for _, p, _ in _held(self.ctx) if id(p) in walk.leaves]
        self._before = sorted(held, key=lambda p: p.numel())[:16]

    def _after_step(self, i: int) -> None:
        self._stepped += 1
        self._before = None
        self._in_step = False

    def _before_step(self, i: int, args, kwargs) -> None:
        self._in_step = True
        if self._reported or _has_closure(args, kwargs) or not self.ctx.diagnose(self._step):
            return                      # a closure computes the gradients inside step() (LBFGS)
        params = _opt_params(self.ctx.optimizers[i])
        if not params or any(p.grad is not None for p in params):
            self._empty_steps[i] = 0
            return
        if not self._backwards:
            self._empty_steps[i] = self._empty_steps.get(i, 0) + 1
            if self._empty_steps[i] >= 2:
                self._emit_empty(i)
        elif self._walked and any(id(p) in self._reached for p in params):
            self._emit_cleared(i, sum(1 for p in params if id(p) in self._reached))

    def _opt(self, i: int) -> str:
        return type(self.ctx.optimizers[i]).__name__

    def _emit(self, title: str, detail: str, fix: str, evidence: dict, location: str | None) -> None:
        self._reported = True
        self.ctx.emit(Finding(code=self.code, severity="error", title=title, detail=detail, module="",
                              location=location, evidence=evidence, fix=fix))

    def _emit_cleared(self, i: int, reached: int) -> None:
        cls = self._opt(i)
        self._emit(
            title=f"{cls}.step() runs on gradients already cleared: zero_grad() sits between backward() and step()",
            detail=(f"At step {self._step}, backward() reached {reached} parameter(s) of {cls}, but when step() ran "
                    f"every one of its gradients was None again: optimizer.zero_grad() (or model.zero_grad()) "
                    f"was called after backward() and before step(). The optimizer has nothing to apply, so the "
                    f"weights never change (momentum alone may drift them)."),
            fix=("Order each iteration as zero_grad(), forward, loss.backward(), optimizer.step() — or backward(), "
                 "step(), zero_grad() — never zero_grad() between backward() and step()."),
            evidence={"step": self._step, "optimizer": i, "optimizer_class": cls, "pattern": "cleared",
                      "parameters_reached": reached, "backward_calls": self._backwards},
            location=self._backward_at)

    def _emit_empty(self, i: int) -> None:
        cls = self._opt(i)
        self._emit(
            title=f"{cls}.step() is called with no gradients at all: backward() never runs",
            detail=(f"By step {self._step}, {cls}.step() had run {self._empty_steps[i]} times in a row with the "
                    f"gradient of every parameter it holds None and no loss.backward() in between: the optimizer "
                    f"has nothing to apply and no weight changes."),
            fix="Call loss.backward() before optimizer.step() in every iteration.",
            evidence={"step": self._step, "optimizer": i, "optimizer_class": cls, "pattern": "no gradients",
                      "steps_without_gradients": self._empty_steps[i]},
            location=frame_location(next(user_frames(3), None)))

    def _emit_never(self) -> None:
        classes = ", ".join(type(o).__name__ for o in self.ctx.optimizers)
        self._emit(
            title="backward() and zero_grad() run, but optimizer.step() never does",
            detail=(f"{self._cleared_cycles + 1} backward passes ran and the gradients were cleared between them, "
                    f"yet the optimizer ({classes}) never stepped: every gradient is computed and thrown away, and "
                    f"no weight changes. Often scheduler.step() is called where optimizer.step() belongs, or the "
                    f"step sits in a branch that never runs."),
            fix="Call optimizer.step() after loss.backward() in every training step (then scheduler.step()).",
            evidence={"step": self._step, "pattern": "never steps", "optimizer_steps": 0,
                      "cleared_between_backwards": self._cleared_cycles},
            location=self._backward_at)
