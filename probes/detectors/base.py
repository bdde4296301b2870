"""What the detectors read, and the base class of the runtime ones: the two shapes a detector takes.

* A run check is a pure function `(RunData) -> list[Finding]` over what the run log holds (scalars,
  per-parameter/per-module series, the registration tree, meta). It runs when a Probe closes and again in
  `report` (also on a run still being written), so it never touches tensors or modules.
* A Watcher is a runtime detector: it attaches to the live model (hooks it owns and always removes),
  sees what the log cannot (a layer built inside forward, a direct model.forward(x) call, validation in
  training mode) and emits Findings as soon as it knows. Watchers must keep the Probe within its overhead
  budget: cheap hooks always, anything costly only on the steps `diagnose(step)` says.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..findings import Finding
from ..runlog import RunLogError, RunReader
from ..runs import rank_runs


@dataclass
class RunData:
    """What a run check may read: plain data, loaded once from a run log."""
    meta: dict[str, Any]
    tree: dict[str, Any] | None
    scalars: pd.DataFrame                     # index step; columns loss, step_time_s, data_wait_s, mem.*, ...
    series: Callable[[str], pd.DataFrame]     # series("grad_norm") -> step x parameter name
    findings: list[dict] = field(default_factory=list)   # findings already logged (runtime watchers)
    # a torch.distributed run: every rank's own log (rank 0 is this one), with scalars and the per-rank
    # series the cross-rank checks read; {} for a run of one process
    ranks: dict[int, "RunData"] = field(default_factory=dict)

    RANK_SERIES = ("param_checksum",)

    @classmethod
    def from_reader(cls, reader, loaded: dict[str, pd.DataFrame] | None = None, ranks: bool = True) -> "RunData":
        """`loaded`: series the caller has read from this reader already (not read twice). `ranks`: read the
        other ranks' logs too (a torch.distributed run)."""
        cache: dict[str, pd.DataFrame] = dict(loaded or {})

        def series(name: str) -> pd.DataFrame:
            if name not in cache:
                cache[name] = reader.series(name)
            return cache[name]

        data = cls(meta=reader.meta(), tree=reader.tree(), scalars=reader.scalars(), series=series,
                   findings=reader.findings())
        if ranks:
            data.ranks = cls.rank_logs(reader.run_dir, data)
        return data

    @classmethod
    def rank_logs(cls, run_dir, this: "RunData", scalars: dict | None = None) -> dict[int, "RunData"]:
        """Every rank's log of a torch.distributed run ({} for one process), `this` standing for the one at
        run_dir. `scalars`: the ranks' scalars the caller holds already (a live view), not read again."""
        out: dict[int, RunData] = {}
        for rank, path in rank_runs(run_dir).items():
            try:
                out[rank] = this if path == Path(run_dir) else cls._rank(path, (scalars or {}).get(rank))
            except RunLogError:
                pass            # a rank whose log is not written yet (or damaged) is left out
        return out

    @classmethod
    def _rank(cls, path, scalars: pd.DataFrame | None = None) -> "RunData":
        """Another rank's log, read now (its reader is closed at once): what the rank views need.
        Its scalars come without the wall-time column (`series("scalars")`, not `scalars()`): at 64 ranks
        x 10,000 steps, joining every step's time costs 40% of reading the ranks, and nothing reads it."""
        with RunReader(path) as reader:
            loaded = {name: reader.series(name) for name in cls.RANK_SERIES}
            return cls(meta=reader.meta(), tree=None,
                       scalars=reader.series("scalars") if scalars is None else scalars,
                       series=lambda name: loaded.get(name, pd.DataFrame()), findings=reader.findings())


@dataclass
class WatchContext:
    """What a Watcher is given when it attaches."""
    model: Any                                 # the nn.Module
    optimizers: list                           # torch optimizers (may be empty)
    module_name: Callable[[Any], str | None]   # module -> dotted path in the model, None if not in it
    emit: Callable[[Finding], None]            # report a finding (deduplicated by the Probe)
    diagnose: Callable[[int], bool]            # steps on which costly checks may run
    guard: Any = None                          # probes.guard.Guard: every hook a watcher adds runs through it
    record_meta: Callable[..., None] = lambda **values: None   # add plain values to the run's meta
    shared: dict = field(default_factory=dict)  # what watchers compute once for all (a loss graph's walk)
    reported: Callable[[], list] = lambda: []   # the findings reported so far (Finding objects)


class Watcher:
    """A runtime detector. Subclasses override what they need; every hook they add goes in self.handles."""

    code = "watcher"

    def __init__(self):
        self.handles: list = []
        self.ctx: WatchContext | None = None

    def attach(self, ctx: WatchContext) -> None:
        self.ctx = ctx

    def step_start(self, step: int) -> None:
        """The previous step ended (or the Probe attached); `step` is the one about to run."""

    def step_end(self, step: int) -> None:
        """Step `step` is complete (its optimizer step has run, gradients are still there)."""

    def step_failed(self, error: str) -> None:
        """The loop raised mid-step: a crash that is itself the symptom of a bug may still be named."""

    def backward(self, loss) -> None:
        """`.backward()` is about to run on `loss` (the live tensor: read its graph, keep no reference)."""

    def detach(self) -> None:
        """Remove every hook; leave the model exactly as it was. Safe to call twice."""
        for h in self.handles:
            h.remove()
        self.handles = []
