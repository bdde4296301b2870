"""What the benchmarks' plots share: matplotlib when installed (requirements-bench.txt), and saving."""
from __future__ import annotations

from pathlib import Path

MISSING = "no plot: matplotlib is not installed (pip install -r requirements-bench.txt)"


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def shown(path: Path) -> str:
    """path as printed: relative to the working directory when under it (no machine paths in the output)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return f"plot: {shown(path)}"
