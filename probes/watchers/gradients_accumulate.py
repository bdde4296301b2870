"""gradients-accumulate, seen from the live tensors: `.grad` is never cleared between two steps of an optimizer.

After an optimizer steps (on a diagnostic step), a few of its smallest parameters are watched: a hook on each
sees every new gradient before it is added, and checks that `.grad` still holds exactly what the step applied
plus what arrived since. If nothing cleared it by the next step of that optimizer, the gradients accumulate
across steps. Deliberate accumulation (N backward passes, step, zero_grad) clears between steps, so it stays
clean; so does a GAN, whose critic gets gradients from the generator's backward and clears them before its own.
"""
from __future__ import annotations

import torch

from ..detectors import gradients_accumulate
from ._base import frame_location, user_frames
from ._step_hooks import StepHooks, opt_params

SENTINELS = 3                   # parameters watched per optimizer for gradients-accumulate


class GradientsAccumulate(StepHooks):
    code = gradients_accumulate.CODE

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
        held = (opt_params(self.ctx.optimizers[i]) if i != self.MANUAL else
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
        self.ctx.emit(gradients_accumulate.finding(self._step, i, cls, manual, kept, self._backward_at))


def _norm(t: torch.Tensor) -> float:
    return float(t.detach().float().norm())
