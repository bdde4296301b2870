"""optimizer-not-stepping, seen live: `step()` runs on gradients already cleared (`zero_grad()` between
backward() and step()), or with no gradient at all (backward() missing), or backward() and zero_grad() run
while the optimizer never steps. The run check (probes/detectors/optimizer_not_stepping.py) adds the
end-of-run verdict: backward ran, no optimizer ever stepped, and no weight changed.
"""
from __future__ import annotations

from ..detectors import optimizer_not_stepping
from ._base import frame_location, graph_walk, user_frames
from ._step_hooks import StepHooks, has_closure, held_parameters, opt_params


class OptimizerNotStepping(StepHooks):
    code = optimizer_not_stepping.CODE

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
        held = [p for _, p, _ in held_parameters(self.ctx) if id(p) in walk.leaves]
        self._before = sorted(held, key=lambda p: p.numel())[:16]

    def _after_step(self, i: int) -> None:
        self._stepped += 1
        self._before = None
        self._in_step = False

    def _before_step(self, i: int, args, kwargs) -> None:
        self._in_step = True
        if self._reported or has_closure(args, kwargs) or not self.ctx.diagnose(self._step):
            return                      # a closure computes the gradients inside step() (LBFGS)
        params = opt_params(self.ctx.optimizers[i])
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

    def _emit(self, finding) -> None:
        self._reported = True
        self.ctx.emit(finding)

    def _emit_cleared(self, i: int, reached: int) -> None:
        self._emit(optimizer_not_stepping.cleared(self._step, i, self._opt(i), reached, self._backwards,
                                                  self._backward_at))

    def _emit_empty(self, i: int) -> None:
        self._emit(optimizer_not_stepping.no_gradients(self._step, i, self._opt(i), self._empty_steps[i],
                                                       frame_location(next(user_frames(3), None))))

    def _emit_never(self) -> None:
        classes = ", ".join(type(o).__name__ for o in self.ctx.optimizers)
        self._emit(optimizer_not_stepping.never_steps(self._step, classes, self._cleared_cycles, self._backward_at))
