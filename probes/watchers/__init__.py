"""Runtime detectors (Watchers, see probes/checks/base.py): they hook the live model, so they import torch.

Kept apart from probes/checks, whose run and tree checks read plain data and must stay torch-free (the
dashboard and `report` run them without torch).

Always on, O(1) per forward: a wrapper on the root's forward, a root pre/post hook pair, pre-hooks on the
few Dropout/BatchNorm modules, PyTorch's global registration hooks (they fire only when something is
registered). Everything per-module, and the TorchFunctionMode, only on `diagnose(step)` steps.
"""
from __future__ import annotations

from .broken_grad import GradientChainBroken
from .dead_units import DeadUnits
from .direct_forward import ForwardCalledDirectly
from .eval_mode import EvalModeMissing, TrainModeOff
from .input_devices import InputDevices
from .layer_in_forward import LayerCreatedInForward
from .kept_graphs import KeptGraphs
from .loss_graph import LossGraph
from .grad_flow import GradientsAccumulate, OptimizerNotStepping, ParamUnreached
from .loss_inputs import LossInputMismatch, LossShapeBroadcast, LossSpy

WATCHERS: tuple = (LayerCreatedInForward, GradientChainBroken, ForwardCalledDirectly, EvalModeMissing, DeadUnits,
                   InputDevices, LossGraph, KeptGraphs, TrainModeOff, GradientsAccumulate, ParamUnreached,
                   OptimizerNotStepping, LossInputMismatch, LossShapeBroadcast,
                   LossSpy)     # last: its forward hook runs after the other watchers' modes are popped
