"""The paths the dashboard works with: where run logs live, the model files it offers and how a typed path
is read, the checkpoints it finds near a model and why a path cannot be one or the other. No streamlit."""
from __future__ import annotations

import os
from pathlib import Path

from probes.contract import CHECK_DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
# the bundled samples: beside the dashboard in a clone; an installed dashboard finds a clone's in the folder
# it was started in (the Quick start runs `forgescope ui` from the clone)
SAMPLES_DIR = next((d for d in (ROOT / "sample_models", Path("sample_models").resolve()) if d.is_dir()),
                   ROOT / "sample_models")
DEFAULT_MODEL = "sample_models/unregistered_module.py"
MODEL_ENV = "FORGESCOPE_MODEL"          # set by `forgescope ui [MODEL_FILE]`: the model to open ("" for none)
RUN_DIR_ENV = "FORGESCOPE_RUN_DIR"      # set by `forgescope ui --logdir DIR`
CHECKPOINT_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".tar"}
_SKIP_DIRS = {"runs", "node_modules", "__pycache__", "site-packages", "wandb", "lightning_logs"}


def run_root() -> Path:
    """Where run logs live: FORGESCOPE_RUN_DIR, else the command line's default (./runs)."""
    return Path(os.environ.get(RUN_DIR_ENV, CHECK_DEFAULTS.run_dir))


def display_path(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def samples() -> list[str]:
    return [display_path(p) for p in sorted(SAMPLES_DIR.glob("*.py"))]


def default_model() -> str:
    """The model the dashboard opens on: `forgescope ui`'s MODEL_FILE (none without one: the run directory is
    what it shows), else the bundled sample when started from the clone (`streamlit run app/main.py`)."""
    if MODEL_ENV in os.environ:
        return os.environ[MODEL_ENV]
    return DEFAULT_MODEL if Path(DEFAULT_MODEL).is_file() else ""


def typed_path(text: str) -> str:
    """A path as people paste it: surrounding blanks and quotes dropped, ~ expanded."""
    return os.path.expanduser(text.strip().strip("'\"").strip())


def model_problem(path: str) -> str | None:
    """Why this path cannot be checked (shown next to the input), or None."""
    if not path.strip():
        return "Type the path of a .py file that defines your model."
    p = Path(path)
    if p.suffix != ".py":
        return f"{path}: not a Python file (the dashboard runs .py files only)"
    if not p.exists():
        return f"{path}: no such file (paths are relative to {Path.cwd()})"
    if p.is_dir():
        return f"{path}: is a folder; give the path of a .py file"
    return None


def checkpoint_files(model_file: str, limit: int = 50) -> list[str]:
    """Checkpoint-looking files beside the model file and in the working folder, two levels deep at most
    (hidden folders, virtual environments and run logs skipped), newest first."""
    found: set[Path] = set()
    roots = {Path.cwd()} | ({Path(model_file).resolve().parent} if Path(model_file).is_file() else set())
    for root in roots:
        for folder, dirs, files in os.walk(root):
            depth = len(Path(folder).relative_to(root).parts)
            dirs[:] = [] if depth >= 2 else [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                                               and not (Path(folder, d) / "pyvenv.cfg").exists()]
            found.update(Path(folder, f) for f in files if Path(f).suffix in CHECKPOINT_SUFFIXES)
    newest = sorted(found, key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
    return [display_path(p) for p in newest[:limit]]


def checkpoint_problem(path: str) -> str | None:
    """Why this path cannot be a checkpoint (shown under the input), or None."""
    if not path:
        return "Type the path of a checkpoint file (saved with torch.save)."
    p = Path(path)
    if not p.exists():
        return f"{path}: no such file (paths are relative to {Path.cwd()})"
    if p.is_dir():
        return f"{path}: is a folder; give the path of a checkpoint file"
    return None


def checkpoint_key(model_file: str, checkpoint: str) -> tuple:
    """What a checkpoint result was computed from: both paths and their file times (a re-save makes it stale)."""
    def stamp(path: str):
        try:
            return Path(path).stat().st_mtime_ns
        except OSError:
            return None
    return model_file, checkpoint, stamp(model_file), stamp(checkpoint)
