"""The layers that behave differently in training and eval mode (Dropout, BatchNorm), which both
eval-mode-missing and train-mode-off watch."""
from __future__ import annotations

from torch import nn

MODE_SENSITIVE = (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


def sensitive(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0            # Dropout(0) behaves the same in both modes
    return isinstance(module, MODE_SENSITIVE)
