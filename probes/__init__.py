"""ForgeScope probes: see inside PyTorch training. Imports torch (lazily), never streamlit.

    from probes import Probe
"""
from importlib import import_module

__version__ = "0.1.0"

# Imported on first use, so the command line and the dashboard can read run logs without loading torch.
_LAZY = {
    "Probe": "probe", "ProbeWarning": "probe", "DEFAULTS": "probe",
    "Finding": "findings",
    "RunReader": "runlog", "RunWriter": "runlog", "RunLogError": "runlog", "list_runs": "runlog",
    "every": "schedules", "never": "schedules",
}
__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'probes' has no attribute {name!r}")
