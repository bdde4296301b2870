"""A long run held at two resolutions: its last steps exact, the older ones in buckets of `width` steps that
keep each column's minimum and maximum (a spike in a gradient norm or the loss, or a dip, stays visible
however coarse the buckets get; a mean would flatten it). What the dashboard holds of a long run; nothing
here imports torch.

Reads go through `between`: the rows of one series in a window of steps, from the reader's own read-only
connection (RunReader's public `series` has no upper bound, and a million-step series read whole is what
this module exists to avoid).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

_DTYPES = {"f4": np.float32, "f8": np.float64}


def _empty() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], name="step", dtype="int64"))


def between(reader, series: str, after: int, upto: int) -> pd.DataFrame:
    """Step x name frame of `series` for after < step <= upto ('scalars' also gets the steps' wall time)."""
    layouts = {lid: (dtype, json.loads(names)) for lid, dtype, names in reader._db.execute(
        "SELECT id, dtype, names FROM layouts WHERE series = ?", (series,))}
    frames = []
    for lid, (dtype, names) in layouts.items():
        rows = reader._db.execute("SELECT step, data FROM records WHERE layout = ? AND step > ? AND step <= ?"
                                  " ORDER BY step", (lid, int(after), int(upto))).fetchall()
        if rows:
            values = np.frombuffer(b"".join(r[1] for r in rows), dtype=_DTYPES[dtype]).reshape(len(rows), len(names))
            steps = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            frames.append(pd.DataFrame(values, columns=names, index=pd.Index(steps, name="step")))
    frame = _empty() if not frames else frames[0] if len(frames) == 1 else pd.concat(frames).sort_index()
    if series != "scalars":
        return frame
    times = reader._db.execute("SELECT step, time FROM steps WHERE step > ? AND step <= ? ORDER BY step",
                               (int(after), int(upto))).fetchall()
    index = pd.Index(np.fromiter((s for s, _ in times), dtype=np.int64, count=len(times)), name="step")
    out = pd.DataFrame({"time": np.fromiter((t for _, t in times), dtype=np.float64, count=len(times))},
                       index=index)
    return out.join(frame, how="left")


class Downsampled:
    """One series: `head` (per bucket of `width` steps, the columns' min and max, indexed by the bucket's
    first step) for the steps before `boundary`, and `tail`, every row from `boundary` on, exact."""

    def __init__(self, width: int = 1):
        self.width = width
        self.boundary: int | None = None          # the first step held exact (None: nothing folded yet)
        self.mins, self.maxs, self.tail = _empty(), _empty(), _empty()

    def append(self, rows: pd.DataFrame) -> None:
        """New rows after the last one held (amortised: the tail stays bounded, see fold)."""
        if not rows.empty:
            self.tail = rows if self.tail.empty else pd.concat([self.tail, rows])

    def fold(self, boundary: int, width: int) -> None:
        """Move the tail's rows before `boundary` (a multiple of `width`) into buckets of `width` steps."""
        if width != self.width:
            self.mins, self.maxs = self._rebucket(self.mins, "min", width), self._rebucket(self.maxs, "max", width)
            self.width = width
        self.boundary = boundary
        old = self.tail[self.tail.index < boundary]
        if old.empty:
            return
        self.tail = self.tail[self.tail.index >= boundary]
        keys = (old.index.to_numpy() // width) * width
        mins, maxs = old.groupby(keys).min(), old.groupby(keys).max()
        self.mins = self._combine(self.mins, mins, "min")
        self.maxs = self._combine(self.maxs, maxs, "max")

    @staticmethod
    def _rebucket(frame: pd.DataFrame, how: str, width: int) -> pd.DataFrame:
        if frame.empty:
            return frame
        out = frame.groupby((frame.index.to_numpy() // width) * width).agg(how)
        out.index.name = "step"
        return out

    @staticmethod
    def _combine(held: pd.DataFrame, new: pd.DataFrame, how: str) -> pd.DataFrame:
        new.index.name = "step"
        if held.empty:
            return new
        both = pd.concat([held, new])
        if both.index.is_unique:
            return both
        out = both.groupby(level=0).agg(how)      # a bucket split between two folds
        out.index.name = "step"
        return out

    def frame(self) -> pd.DataFrame:
        """What the charts draw: each bucket's min at its first step and its max half a bucket later, then
        the exact tail."""
        if self.mins.empty:
            return self.tail
        maxs = self.maxs.copy()
        maxs.index = maxs.index + self.width // 2 if self.width > 1 else maxs.index
        head = pd.concat([self.mins, maxs]) if self.width > 1 else self.mins
        head = head[~head.index.duplicated(keep="last")].sort_index()
        head.index.name = "step"
        return pd.concat([head, self.tail]) if not self.tail.empty else head


def bucket_width(head_steps: int, buckets: int) -> int:
    """The smallest power of two that fits `head_steps` steps in at most `buckets` buckets (a power of two:
    when the head outgrows it, pairs of buckets merge into the next width exactly)."""
    need = max(1, math.ceil(head_steps / max(buckets, 1)))
    return 1 << (need - 1).bit_length()
