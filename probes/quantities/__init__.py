"""Statistics recorded per step. One small class per statistic; the lifecycle lives in base.Quantity."""
from .activations import Activations
from .base import Quantity, StepContext
from .checksum import ParamChecksum
from .grad_norm import GradNorm
from .memory import Memory
from .update_size import UpdateSize

__all__ = ["Activations", "GradNorm", "Memory", "ParamChecksum", "Quantity", "StepContext", "UpdateSize"]
