"""The one guard every hook of the Probe runs through: a failure of ours never reaches the user's training.

Each statistic and detector has a name ("activations", "grad_norm", "dead-units", "loss capture", ...).
Everything the Probe runs inside the user's code (module hooks, optimizer hooks, registration hooks, the
loss capture, the wrapped loader, a watcher's TorchFunctionMode) is wrapped by `Guard.wrap(name, fn)` or
registered with `Guard.hook(...)`. When such a function raises, the guard

* records why under that name (`Guard.failed`, and the run log's meta through the Probe),
* warns once (`ProbeWarning`, at the user's line, naming the statistic and the reason),
* calls the name's disable callbacks (remove its hooks, drop its state),

and returns None to the caller, so the user's forward, backward or optimizer step carries on unchanged and
every other statistic keeps recording. Registering a hook anywhere else in probes/ is a bug: a test reads
the package's source for it.

Some things are not failures but limits of what can be watched: a TorchScript submodule takes no Python
hooks, a tensor inside a torch.func transform cannot be read. They are noted once (`Guard.notes`, one plain
sentence each) and skipped, without a warning.
"""
from __future__ import annotations

import functools
import sys
import warnings
from typing import Any, Callable

import torch


class ProbeWarning(UserWarning):
    """The Probe could not record something; training is unaffected."""


class Guard:
    """Failures by name; see the module docstring."""

    def __init__(self, core: str | None = None):
        self.core = core                            # the name whose failure stops all recording
        self.failed: dict[str, str] = {}            # name -> why it stopped
        self.notes: dict[str, str] = {}             # what could not be watched, one sentence each
        self._on_fail: dict[str, list[Callable[[], None]]] = {}

    # -- running guarded code -----------------------------------------------------------------------
    def ok(self, name: str) -> bool:
        return name not in self.failed

    def on_fail(self, name: str, callback: Callable[[], None]) -> None:
        """Call `callback` (once) when `name` fails: remove its hooks, drop its state."""
        self._on_fail.setdefault(name, []).append(callback)

    def call(self, name: str, fn: Callable, *args, **kwargs) -> Any:
        """fn(*args, **kwargs), or None if it raises (or `name` failed before)."""
        if name in self.failed:
            return None
        try:
            return fn(*args, **kwargs)
        except Exception as e:      # noqa: BLE001 - any failure of ours must stay ours
            self.fail(name, e)
            return None

    def wrap(self, name: str, fn: Callable) -> Callable:
        """fn, guarded under `name`: for hooks and callbacks handed to torch or to the user's loader."""
        @functools.wraps(fn)
        def guarded(*args, **kwargs):
            if name in self.failed:
                return None
            try:
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                self.fail(name, e)
                return None
        return guarded

    def fail(self, name: str, reason: BaseException | str) -> None:
        if name in self.failed:
            return
        why = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        self.failed[name] = why
        if name == self.core:
            text = f"ForgeScope Probe stopped recording ({why}); training continues unaffected."
        else:
            text = (f"ForgeScope: {name} stopped ({why}); the Probe records everything else and training "
                    f"continues unaffected.")
        try:
            warnings.warn(text, ProbeWarning, stacklevel=user_stacklevel())
        except Exception:           # noqa: BLE001 - warnings turned into errors (-W error) must not raise here
            pass
        for callback in self._on_fail.pop(name, []):
            try:
                callback()
            except Exception:       # noqa: BLE001 - half-attached: remove what we can
                pass

    def note(self, name: str, sentence: str) -> None:
        """A limit of what can be watched (not a failure): said once, in plain words, never warned."""
        self.notes.setdefault(name, sentence)

    # -- registering hooks --------------------------------------------------------------------------
    def hook(self, name: str, target: Any, kind: str, fn: Callable, **kwargs):
        """Register `fn`, guarded under `name`, as a `kind` hook of `target`; returns the handle, or None
        where the target takes no hooks.

        kind: "forward", "forward_pre" (modules), "step_pre", "step_post" (optimizers), "step_ready" (an
        optimizer's step once its gradients are final: at step_pre, or, when step() is given a closure that
        computes them, as PyTorch Lightning and LBFGS do, right after the closure's first call), "node" (an autograd
        node), "tensor" (a parameter's gradient hook), or a global one:
        "module_registration", "parameter_registration", "buffer_registration" (target ignored)."""
        if kind in _GLOBAL:
            return _GLOBAL[kind](self.wrap(name, fn))
        if isinstance(target, torch.jit.ScriptModule):
            self.note("torchscript", "TorchScript submodules (torch.jit.script) take no Python hooks: their "
                                     "insides are not watched, the rest of the model is.")
            return None
        guarded = self.wrap(name, fn)
        if kind == "forward_pre":
            return target.register_forward_pre_hook(_ModuleHook(self, target, guarded), **kwargs)
        if kind == "forward":
            return target.register_forward_hook(_ModuleHook(self, target, guarded), **kwargs)
        if kind == "node":              # an autograd graph node (a tensor's grad_fn): called when backward reaches it
            return target.register_hook(guarded)
        if kind == "tensor":            # a leaf tensor (a parameter): called with each gradient before it is
            guarded.__torch_unserializable__ = True     # accumulated; torch.save(model) does not warn about it
            return target.register_hook(guarded)
        if kind in ("step_pre", "step_post", "step_ready"):
            return _StepHookHandle.register(target, kind, guarded, **kwargs)
        register = getattr(target, f"register_{kind}_hook")
        return register(guarded, **kwargs)


class _StepHookHandle:
    """An optimizer hook whose removal is safe from inside an optimizer hook.

    Optimizer.step runs its hooks straight from the hook dicts: removing one while they run (a statistic
    that fails and detaches in a step hook, a watcher that is done) would break the user's step with
    "OrderedDict mutated during iteration". Removed from there, the hook goes inert at once and leaves its
    dict later, at the next `flush_removals()` outside any optimizer hook (a forward, close)."""

    depth = 0                       # our optimizer hooks running now (they may nest: a wrapper optimizer)
    pending: list = []

    def __init__(self):
        self.handle = None
        self.off = False

    @classmethod
    def register(cls, target, kind, fn, **kwargs):
        me = cls()

        def hook(*args, **kw):
            if me.off:
                return None
            cls.depth += 1
            try:
                return fn(*args, **kw)
            finally:
                cls.depth -= 1
        if kind == "step_ready":
            me.handle = target.register_step_pre_hook(_after_closure(me, hook), **kwargs)
        else:
            me.handle = getattr(target, f"register_{kind}_hook")(hook, **kwargs)
        return me

    def remove(self) -> None:
        self.off = True
        if _StepHookHandle.depth:
            _StepHookHandle.pending.append(self.handle)
        else:
            self.handle.remove()
            flush_removals()


def closure_of(args, kwargs):
    """The closure an optimizer step is given, or None (torch hands step hooks `args` with the optimizer first)."""
    closure = kwargs.get("closure")
    if closure is None and len(args) > 1 and callable(args[1]):
        closure = args[1]
    return closure


def _after_closure(me: "_StepHookHandle", hook: Callable) -> Callable:
    """A step pre-hook that runs `hook` when the step's gradients are final. Without a closure that is now.
    With one (`optimizer.step(closure)`: Lightning's automatic optimization, LBFGS) the closure runs the
    forward and backward inside step(), so before it the gradients are the previous step's: the closure is
    handed on wrapped, and `hook` runs once, right after its first call returns, before any update. The
    wrapper calls the user's closure unchanged and returns its result; the hook itself is guarded."""
    def pre(optimizer, args, kwargs):
        if me.off:
            return None
        try:
            closure = closure_of(args, kwargs)
            if closure is not None:
                fired = []

                def closure_then_hook(*a, **k):
                    result = closure(*a, **k)
                    if not fired:
                        fired.append(True)
                        hook(optimizer, args, kwargs)
                    return result
                if kwargs.get("closure") is not None:
                    return args, {**kwargs, "closure": closure_then_hook}
                return (args[0], closure_then_hook, *args[2:]), kwargs
        except Exception:       # noqa: BLE001 - our bookkeeping never stops the user's step: hand it on as given
            pass
        hook(optimizer, args, kwargs)
        return None
    return pre


def flush_removals() -> None:
    """Take out of their dicts the optimizer hooks removed while optimizer hooks were running."""
    if _StepHookHandle.depth or not _StepHookHandle.pending:
        return
    pending, _StepHookHandle.pending = _StepHookHandle.pending, []
    for handle in pending:
        handle.remove()


class _ModuleHook:
    """A module hook that acts for its own module only.

    copy.deepcopy(model) copies the model's hook dicts, ours included (an EMA copy, swa_utils.AveragedModel):
    the copy gets `_inert` in their place, so it runs none of our code and holds no reference to the Probe
    (and torch.save of the copy pickles a plain function). A shallow copy sharing the dicts (a DataParallel
    replica) is told apart by identity.

    Inside torch.func transforms (vmap, grad) a module's inputs and outputs are wrappers whose values
    cannot be read, and while torch.compile traces a forward they are fake tensors: the hook does nothing
    there (a compiled graph is traced once, so it holds none of our code), and the guard notes it once."""

    __slots__ = ("guard", "owner", "fn")

    def __init__(self, guard, module, fn):
        self.guard, self.owner, self.fn = guard, id(module), fn

    def __call__(self, module, *args, **kwargs):
        if id(module) != self.owner:
            return None
        if _StepHookHandle.pending:
            flush_removals()
        if _compiling():
            self.guard.note("torch.compile", "Modules inside a torch.compile'd forward are not watched (their "
                                             "compiled code holds no hooks); gradients, weight updates, "
                                             "memory and the loss are recorded as usual.")
            return None
        if in_transform():
            self.guard.note("torch.func", "Module calls inside torch.func transforms (vmap, grad) are not "
                                          "watched; the same modules' ordinary calls are.")
            return None
        return self.fn(module, *args, **kwargs)

    def __deepcopy__(self, memo):
        return _inert

    def __reduce__(self):
        return _inert_ref, ()


def _inert(*args, **kwargs):
    """What a copied model keeps of our hooks: nothing runs."""
    return None


def _inert_ref():
    return _inert


def _global_hooks() -> dict[str, Callable]:
    from torch.nn.modules import module as nn_module
    return {"module_registration": nn_module.register_module_module_registration_hook,
            "parameter_registration": nn_module.register_module_parameter_registration_hook,
            "buffer_registration": nn_module.register_module_buffer_registration_hook,
            "module_forward_pre": nn_module.register_module_forward_pre_hook,
            "module_forward": nn_module.register_module_forward_hook}


_GLOBAL = _global_hooks()


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def in_transform() -> bool:
    """True inside torch.func transforms (vmap, grad, jacrev...): their tensors are wrappers whose values
    cannot be read (.item() raises), so per-tensor statistics are skipped there."""
    level = getattr(getattr(torch._C, "_functorch", None), "maybe_current_level", None)
    return level is not None and level() is not None


def user_stacklevel() -> int:
    """The stacklevel, for a warning issued from the guard, of the user's line: a failure mid-run is met
    inside a hook, several torch and probes frames below the training loop's own line."""
    from .errors import _is_library
    frame, level = sys._getframe(2), 2          # frame k is stacklevel k: 1 is Guard.fail, which warns
    while frame is not None and _is_library(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 3
