"""Runtime detectors (Watchers, see probes/detectors/base.py): they hook the live model, so they import torch.

Each watcher observes and hands what it saw to its code's module in probes/detectors, which builds the
finding (the wording lives there, torch-free, with the run checks; the dashboard and `report` run those
without torch). Files are named after the code they feed; shared machinery is in the underscore modules
(_base.py: SafeWatcher, the user's frames, the loss graph's walk; _loss_calls.py: the loss spy both loss
watchers read; _step_hooks.py: hooks on the optimizers' steps; _modes.py: the mode-sensitive layers).

Always on, O(1) per forward: a wrapper on the root's forward, a root pre/post hook pair, pre-hooks on the
few Dropout/BatchNorm modules, PyTorch's global registration hooks (they fire only when something is
registered). Everything per-module, and the TorchFunctionMode, only on `diagnose(step)` steps.
"""
from __future__ import annotations

from ._loss_calls import LossSpy
from .dead_units import DeadUnits
from .eval_mode_missing import EvalModeMissing
from .forward_called_directly import ForwardCalledDirectly
from .gradient_chain_broken import GradientChainBroken, LossGraph
from .gradients_accumulate import GradientsAccumulate
from .layer_created_in_forward import LayerCreatedInForward
from .loss_input_mismatch import LossInputMismatch
from .loss_shape_broadcast import LossShapeBroadcast
from .memory_growth import KeptGraphs
from .mixed_devices import InputDevices
from .optimizer_not_stepping import OptimizerNotStepping
from .param_unreached import ParamUnreached
from .train_mode_off import TrainModeOff

WATCHERS: tuple = (LayerCreatedInForward, GradientChainBroken, ForwardCalledDirectly, EvalModeMissing, DeadUnits,
                   InputDevices, LossGraph, KeptGraphs, TrainModeOff, GradientsAccumulate, ParamUnreached,
                   OptimizerNotStepping, LossInputMismatch, LossShapeBroadcast,
                   LossSpy)     # last: its forward hook runs after the other watchers' modes are popped
