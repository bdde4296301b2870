"""The opt-in `--compile-check`: where torch.compile would split the model's forward (graph breaks).

compile_check(model, inputs, user_file) runs torch._dynamo.explain on a deep copy of the model, in eval
mode, under torch.no_grad(), with the CPU RNG state restored afterwards, and returns info findings:

* `compile-graph-breaks`: one per (file, line, reason), with how often it broke there in evidence;
* when explain itself cannot run: one `compile-graph-breaks` finding that says so, with
  evidence {"ran": false} (the check goes on; never an error). The catalogue's codes are public, so
  this reuses the code rather than inventing one.

explain uses a no-op backend (it only captures graphs), so no C compiler is needed. It really runs the
forward, once. It resets dynamo's caches before and after (so does this module, in any case).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import re
import signal
import threading
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from .detectors import compile_graph_breaks
from .detectors.compile_graph_breaks import CODE  # noqa: F401 - the code this module reports
from .detectors.compile_graph_breaks import unavailable as _unavailable
from .detectors.thresholds import COMPILE_MAX_BREAK_FINDINGS, COMPILE_MIN_TIME_S, COMPILE_REASON_CHARS
from .errors import _is_library, _same
from .findings import Finding, location

_FRAME_SKIPPED = re.compile(r"frame skipped: (?P<name>\S+) \((?P<file>.+) line (?P<line>\d+)\)")


class _OutOfTime(BaseException):
    """Raised by the alarm: a BaseException, so dynamo's own `except Exception` cannot swallow it."""


def compile_check(model: Any, inputs: Any, user_file: str | None = None,
                  time_limit: float | None = None) -> list[Finding]:
    """Graph-break findings for `model` called on `inputs` (a tensor, a tuple/list of args, or a dict of
    keyword args, as the check calls it). Never raises: a failure is one finding with evidence {"ran": false}.

    time_limit (seconds): stop explain after this long (SIGALRM; only in the main thread where it exists),
    so a slow trace cannot push the whole check past its --timeout."""
    if time_limit is not None and time_limit < COMPILE_MIN_TIME_S:
        return [_unavailable(f"only {max(time_limit, 0):.1f} s were left before the check's --timeout")]
    try:
        import torch
        import torch._dynamo
        from torch._dynamo.utils import counters
    except Exception as exc:     # noqa: BLE001 - a torch build without dynamo
        return [_unavailable(f"torch._dynamo could not be imported ({type(exc).__name__}: {exc})")]
    dynamo_log = logging.getLogger("torch._dynamo")
    level = dynamo_log.level
    before = Counter(counters["unimplemented"])
    try:
        clone = copy.deepcopy(model)
        clone.eval()
        args, kwargs = _as_call(inputs)
        dynamo_log.setLevel(logging.ERROR)      # its graph-break warnings repeat what the findings say
        with _alarm(time_limit), warnings.catch_warnings(), torch.random.fork_rng(devices=[]), \
                torch.no_grad():
            warnings.simplefilter("ignore")     # dynamo's warnings repeat the break reasons
            explained = torch._dynamo.explain(clone)(*args, **kwargs)
        skipped = Counter(counters["unimplemented"]) - before
    except _OutOfTime:
        return [_unavailable(f"explain was still tracing after {time_limit:.1f} s, the time left before "
                             f"the check's --timeout (raise --timeout to give it longer)")]
    except (Exception, SystemExit) as exc:    # noqa: BLE001 - the compile check never fails the check
        first = str(exc).strip().splitlines()[0][:COMPILE_REASON_CHARS] if str(exc).strip() else ""
        return [_unavailable(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)]
    finally:
        dynamo_log.setLevel(level)
        try:
            torch._dynamo.reset()
        except Exception:       # noqa: BLE001
            pass
    if explained.graph_count == 0 and skipped:
        return [_skipped_frame(skipped, user_file)]
    return _break_findings(explained, user_file)


@contextlib.contextmanager
def _alarm(seconds: float | None):
    usable = (seconds is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def _ring(signum, frame):
        raise _OutOfTime()

    previous = signal.signal(signal.SIGALRM, _ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _as_call(inputs: Any) -> tuple[tuple, dict]:
    if isinstance(inputs, dict):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def _break_findings(explained: Any, user_file: str | None) -> list[Finding]:
    groups: dict[tuple, int] = {}
    for br in explained.break_reasons:
        key = (*_user_line(getattr(br, "user_stack", None) or [], user_file), _reason(br.reason))
        groups[key] = groups.get(key, 0) + 1
    ordered = list(groups.items())
    return [compile_graph_breaks.graph_break(reason, explanation, count, location(file, line), explained.graph_count,
                                             explained.graph_break_count, len(ordered))
            for (file, line, (reason, explanation)), count in ordered[:COMPILE_MAX_BREAK_FINDINGS]]


def _skipped_frame(skipped: Counter, user_file: str | None) -> Finding:
    """Dynamo gave up on the whole forward (a graph break inside a loop): explain reports no graph and no
    break, but counted why."""
    text = next((k for k in skipped if _FRAME_SKIPPED.search(k)), next(iter(skipped)))
    reason, explanation = _reason(text)
    where = _FRAME_SKIPPED.search(text)
    file, line = (where["file"], int(where["line"])) if where else (None, None)
    if file and user_file and not _same(file, _resolved(user_file)):
        file, line = None, None
    return compile_graph_breaks.frame_skipped(reason, explanation, text, sum(skipped.values()), location(file, line),
                                              bool(where))


def _reason(text: str) -> tuple[str, str]:
    """(first line, the 'Explanation:' line if any), both trimmed."""
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    first = lines[0] if lines else "unknown reason"
    explanation = next((ln.removeprefix("Explanation:").strip() for ln in lines[1:]
                        if ln.startswith("Explanation:")), "")
    return first[:COMPILE_REASON_CHARS], explanation[:COMPILE_REASON_CHARS].rstrip(".")


def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def _user_line(stack: list, user_file: str | None) -> tuple[str | None, int | None]:
    """The innermost frame in the user's file, else the innermost one outside torch/ForgeScope/libraries."""
    wanted = _resolved(user_file) if user_file else None
    if wanted:
        for fs in reversed(stack):
            if fs.filename and _same(fs.filename, wanted):
                return fs.filename, fs.lineno
    for fs in reversed(stack):
        if fs.filename and not _is_library(fs.filename):
            return fs.filename, fs.lineno
    return None, None
