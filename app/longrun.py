"""A long run as the dashboard holds it: the last EXACT_STEPS steps exact, the older ones in buckets that keep
each column's min and max (probes.downsample), so a million-step run costs the server a few MiB and every
refresh reads and appends only the new steps. The run checks of such a run read the whole log in a worker
process (python -m app.runcheck): their findings are those of the full data, and the server never holds it.
No streamlit here (app.data's RunView is what the pages get)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from probes.downsample import Downsampled, between, bucket_width
from probes.runlog import RunLogError, RunReader

EXACT_STEPS = 10_000        # the last steps, always exact
FOLD_SLACK = 5_000          # the exact part grows this far past EXACT_STEPS before its oldest steps are folded
HEAD_BUCKETS = 2_000        # at most this many buckets before the exact part (each drawn as a min and a max)
CHUNK_STEPS = 50_000        # a long run is read this many steps at a time (the memory a load needs)
LONG_AFTER = EXACT_STEPS + FOLD_SLACK       # a run with more steps than this is held downsampled
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LongRun:
    """The downsampled series of one run ('scalars' among them), its step count and first step."""
    held: dict[str, Downsampled] = field(default_factory=dict)
    steps: int = 0
    first: int = 0
    last: int = -1

    @property
    def boundary(self) -> int | None:
        return next(iter(self.held.values())).boundary if self.held else None

    @property
    def width(self) -> int:
        return next(iter(self.held.values())).width if self.held else 1

    def fold(self) -> None:
        """Fold what the exact part holds beyond EXACT_STEPS (+ slack) into the buckets, all series alike."""
        if self.boundary is not None and self.last - self.boundary < EXACT_STEPS + FOLD_SLACK:
            boundary, width = self.boundary, self.width         # the same boundary: fold what is left before it
        else:
            width = bucket_width(self.last + 1 - EXACT_STEPS - self.first, HEAD_BUCKETS)
            boundary = max(self.first, (self.last + 1 - EXACT_STEPS) // width * width)
        for d in self.held.values():
            d.fold(boundary, width)

    def add(self, name: str, rows) -> None:
        self.held.setdefault(name, Downsampled(self.width)).append(rows)

    def frames(self) -> tuple:
        scalars = self.held["scalars"].frame()
        return scalars, {n: d.frame() for n, d in self.held.items() if n != "scalars"}


def start_check(path: Path) -> subprocess.Popen:
    """The run checks over the whole log, in a worker process (its memory is its own and freed at exit)."""
    return subprocess.Popen([sys.executable, "-m", "app.runcheck", str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_check(proc: subprocess.Popen) -> list[dict]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RunLogError((err.strip().splitlines() or ["the run checks failed"])[-1])
    return json.loads(out)


def check(path: Path) -> list[dict]:
    """The findings (dicts, in the pages' order) of the run checks over the whole log at `path`, from a worker
    process, with those the run logged."""
    from app.data import _sorted, merge_findings
    proc = start_check(path)
    with RunReader(path) as reader:
        logged = reader.findings()
    return _sorted(merge_findings(logged, finish_check(proc)))


def load(path: Path, reader: RunReader):
    """The RunView of a long run, read CHUNK_STEPS steps at a time (folded as it goes); its checks run meanwhile."""
    from app.data import RunView, _sorted, merge_findings, run_status
    proc = start_check(path)
    long = LongRun(steps=reader.step_count())
    (first, last), = reader._db.execute("SELECT MIN(step), MAX(step) FROM steps").fetchall()
    long.first, long.last = int(first), int(last)
    names = ["scalars"] + [n for n in reader.series_names() if n != "scalars"]
    after = long.first - 1
    while after < long.last:
        upto = after + CHUNK_STEPS
        for name in names:
            long.add(name, between(reader, name, after, upto))
        after = upto
        long.fold()
    meta = reader.meta()
    scalars, series = long.frames()
    view = RunView(path=path, meta=meta, status=run_status(path, meta), tree=reader.tree(), scalars=scalars,
                   findings=[], series=series, long=long)
    view.findings = _sorted(merge_findings(reader.findings(), finish_check(proc)))
    view.checked_at, view.checked_status = time.monotonic(), meta.get("status")
    return view


def from_view(view) -> None:
    """An exact view that has grown long, downsampled in place (no read)."""
    long = LongRun(steps=len(view.scalars), first=int(view.scalars.index[0]), last=int(view.scalars.index[-1]))
    long.add("scalars", view.scalars)
    for name, frame in view.series.items():
        long.add(name, frame)
    long.fold()
    view.long = long
    view.scalars, view.series = long.frames()


def extend(view, reader: RunReader):
    """`view` (long) with the steps written since: only those are read; the exact part is folded as it grows."""
    from app.data import RunView, _sorted, merge_findings, run_status
    long = view.long
    upto = reader.last_step()
    if upto is None or upto <= long.last:
        new = False
    else:
        new = True
        names = set(long.held) | {n for n in reader.series_names()}
        for name in sorted(names):
            long.add(name, between(reader, name, long.last, upto))
        long.steps += reader._db.execute("SELECT COUNT(*) FROM steps WHERE step > ? AND step <= ?",
                                         (long.last, upto)).fetchone()[0]
        long.last = upto
        long.fold()
    meta = reader.meta()
    scalars, series = long.frames() if new else (view.scalars, view.series)
    fresh = RunView(path=view.path, meta=meta, status=run_status(view.path, meta), tree=reader.tree(),
                    scalars=scalars, findings=view.findings, series=series, checked_at=view.checked_at, long=long,
                    checked_status=view.checked_status)
    fresh.findings = _sorted(merge_findings(fresh.findings, reader.findings()))
    return fresh
