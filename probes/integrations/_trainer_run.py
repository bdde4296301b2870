"""What the trainer callbacks share: one Probe over the model and optimizers a trainer built, fed the
trainer's own events. Nothing here raises into the trainer: a failure of ours warns once (ProbeWarning)
and the training goes on, with the Probe, or without it if it could not be attached."""
from __future__ import annotations

import atexit
import sys
import time
import warnings
from typing import Any, Iterable

from ..guard import ProbeWarning
from ..schedules import as_schedule

CADENCES = ("grad_norm", "update_size", "activations", "memory", "tree", "diagnose", "sync_check")
OTHER_SETTINGS = ("run_name", "capture_loss", "meta")
# series the Probe writes itself: a trainer metric of the same name is not allowed to overwrite them
RESERVED = frozenset({"loss", "lr", "step_time_s", "data_wait_s", "loss_nonfinite"})


def check_settings(owner: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The Probe settings a callback was given, checked when the callback is built (not at the first step)."""
    for name, value in settings.items():
        if name in CADENCES:
            try:
                as_schedule(name, value)
            except ValueError as e:
                raise ValueError(f"{owner}({name}={value!r}): {str(e).split(': ', 1)[-1]}") from None
        elif name not in OTHER_SETTINGS:
            known = ", ".join(("run_dir",) + CADENCES + OTHER_SETTINGS)
            raise TypeError(f"{owner}() got an unexpected setting {name!r}; it takes {known}")
    return settings


def scalar(value: Any) -> float | None:
    """A metric as a float, if it is one number (a Python number or a one-element tensor)."""
    try:
        import torch
        if isinstance(value, torch.Tensor):
            return float(value.detach().float().item()) if value.numel() == 1 else None
        if isinstance(value, bool):
            return None
        return float(value) if isinstance(value, (int, float)) else None
    except Exception:           # noqa: BLE001
        return None


class TrainerRun:
    """One training run under a trainer: the Probe, the time of the last batch's end (data wait is the time
    from there to the next batch's start), and the pauses (validation, checkpoints) that are neither data
    wait nor a training step's time."""

    def __init__(self, owner: str, run_dir, settings: dict[str, Any], trainer: str):
        self.owner, self.run_dir, self.settings, self.trainer = owner, run_dir, dict(settings), trainer
        self.probe = None
        self._mark: float | None = None         # the last batch's end (or the epoch's start)
        self._warned = False
        self._hook_installed = False

    # -- never raise into the trainer ----------------------------------------------------------------------
    def safely(self, what: str, fn, *args) -> Any:
        try:
            return fn(*args)
        except Exception as e:              # noqa: BLE001 - the trainer's run must go on
            if not self._warned:
                self._warned = True
                try:
                    warnings.warn(f"ForgeScope: the {self.owner} could not {what} ({type(e).__name__}: {e}); "
                                  f"training continues unaffected.", ProbeWarning, stacklevel=2)
                except Exception:           # noqa: BLE001 - warnings turned into errors must not raise here
                    pass
            return None

    # -- the run's life ------------------------------------------------------------------------------------
    def start(self, model, optimizers: Iterable, loader=None, meta: dict | None = None) -> None:
        if self.probe is not None:
            return
        from ..probe import Probe
        settings = dict(self.settings)
        settings["meta"] = {"trainer": self.trainer, **(meta or {}), **(settings.get("meta") or {})}
        optimizers = [o for o in optimizers or [] if o is not None]
        self.probe = Probe(model, optimizers or None, run_dir=self.run_dir, **settings)
        if loader is not None:
            self.probe.guard.call("data wait", self.probe._on_loader, loader)
        self._mark = time.perf_counter()
        self._watch_exit()

    def close(self, error: str | None = None) -> None:
        probe, self.probe = self.probe, None
        self._unwatch_exit()
        if probe is None:
            return
        # metrics of a validation pass after the last step belong to no step: kept in the run's meta
        pending = {k: v for k, v in probe._logged.items() if k not in RESERVED and isinstance(v, float)}
        if pending and probe._writer is not None and not probe._stepped:
            probe.guard.call("recording", probe._writer.set_meta, final_metrics=pending)
        probe.close(error=error)

    # -- per batch -----------------------------------------------------------------------------------------
    def epoch_start(self) -> None:
        self._mark = time.perf_counter()

    def batch_start(self) -> None:
        """A batch was handed to the training step: the time since the last batch's end went to the loader."""
        now = time.perf_counter()
        if self.probe is not None and self._mark is not None:
            self.probe.guard.call("data wait", self.probe._on_data_wait, max(0.0, now - self._mark))
        self._mark = None

    def batch_end(self) -> None:
        self._mark = time.perf_counter()

    def before_optimizer_step(self, optimizer, index: int, sum_losses: bool) -> None:
        """Right before an optimizer applies the step: its learning rate, and the step's loss as the trainer
        reports it (each micro-batch's loss is divided by the number of micro-batches before backward, so the
        step's loss is their sum)."""
        probe = self.probe
        if probe is None:
            return
        groups = getattr(optimizer, "param_groups", None) or []
        if groups and scalar(groups[0].get("lr")) is not None:
            probe.log(**{"lr" if index == 0 else f"lr.{index}": scalar(groups[0]["lr"])})
        if sum_losses and probe._losses and index == 0:
            import torch
            probe.log(loss=torch.stack([t.float().reshape(()) for t in probe._losses]).sum())

    def pause_end(self) -> None:
        """A validation pass or a checkpoint ended: the time since the last batch's end was spent there, not
        waiting for data, and is left out of the next step's time."""
        now = time.perf_counter()
        if self.probe is not None and self._mark is not None:
            self.probe._step_t0 += max(0.0, now - self._mark)
        self._mark = now

    def metrics(self, values: dict[str, Any], prefix: str = "") -> None:
        """Scalar metrics the trainer computed (validation loss, accuracy), on the step being built."""
        if self.probe is None:
            return
        logged = {}
        for name, value in (values or {}).items():
            number = scalar(value)
            name = f"{prefix}{name}"
            if number is not None and name not in RESERVED:
                logged[name] = number
        if logged:
            self.probe.log(**logged)

    # -- a run that ends with an exception no callback sees ---------------------------------------------------
    def _watch_exit(self) -> None:
        """The Hugging Face Trainer has no exception callback: an exception that ends the script, or an exit
        in the middle of training, closes the run as failed, with the reason."""
        if self._hook_installed:
            return
        self._hook_installed = True
        self._previous_hook = sys.excepthook

        def excepthook(exc_type, exc, tb):
            self.safely("close the run", self.close, f"{exc_type.__name__}: {exc}")
            self._previous_hook(exc_type, exc, tb)
        self._excepthook = excepthook
        sys.excepthook = excepthook
        atexit.register(self._at_exit)

    def _unwatch_exit(self) -> None:
        if not self._hook_installed:
            return
        self._hook_installed = False
        if sys.excepthook is self._excepthook:
            sys.excepthook = self._previous_hook
        atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self.safely("close the run", self.close, "the process exited before training ended")
