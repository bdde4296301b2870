"""--compile-check: torch._dynamo.explain's graph breaks as info findings `compile-graph-breaks`.

The CLI runs are real subprocesses (a worker imports torch and runs dynamo: a few seconds each), shared
per module; the unit tests call probes.compile_check in this process.
"""
from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from probes.compile_check import CODE, _break_findings, compile_check  # noqa: E402
from probes.findings import location  # noqa: E402

BUGGY = "sample_models/compile_graph_breaks.py"
FIXED = "sample_models/compile_graph_breaks_fixed.py"


def _check(path: str, run_dir: Path, *flags: str) -> tuple[int, dict]:
    proc = subprocess.run([sys.executable, "-m", "probes", "check", path, *flags, "--steps", "2", "--json",
                           "--run-dir", str(run_dir)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def _line_of(path: str, text: str) -> int:
    lines = (REPO / path).read_text().splitlines()
    hits = [i for i, line in enumerate(lines, 1) if text in line and not line.lstrip().startswith(("#", "`"))]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compile-runs")
    return {"buggy": _check(BUGGY, tmp, "--compile-check"), "fixed": _check(FIXED, tmp, "--compile-check"),
            "plain": _check(BUGGY, tmp)}


UNAVAILABLE = "(could not run)"     # marker for _codes: the compile finding that says explain failed


def _codes(result: dict, code: str) -> list[dict]:
    if code == UNAVAILABLE:
        return [f for f in result["findings"] if f["code"] == CODE and f["evidence"].get("ran") is False]
    return [f for f in result["findings"] if f["code"] == code and f["evidence"].get("ran") is not False]


def _failed(found) -> list[tuple]:
    return [(f.code, f.severity, f.evidence.get("ran")) for f in found]


def test_buggy_sample_reports_the_break_line(runs):
    code, result = runs["buggy"]
    assert result["error"] is None, result["error"]
    assert code == 0
    assert not _codes(result, UNAVAILABLE), _codes(result, UNAVAILABLE)
    breaks = _codes(result, CODE)
    assert len(breaks) == 1, json.dumps(result["findings"], indent=1)
    finding = breaks[0]
    assert finding["severity"] == "info"
    assert finding["location"] == f"{BUGGY}:{_line_of(BUGGY, '.item()')}"
    assert "item()" in finding["title"] and finding["evidence"]["count"] == 1
    assert finding["evidence"]["reason"] and finding["fix"]


def test_buggy_sample_break_is_in_the_run_log(runs):
    from probes.report import report_run
    _, result = runs["buggy"]
    recorded = report_run(result["run_dir"])
    assert [f["location"] for f in recorded["findings"] if f["code"] == CODE] == \
        [f["location"] for f in _codes(result, CODE)]


def test_fixed_sample_has_no_break(runs):
    code, result = runs["fixed"]
    assert result["error"] is None, result["error"]
    assert code == 0
    assert not _codes(result, CODE), json.dumps(result["findings"], indent=1)
    assert not _codes(result, UNAVAILABLE), _codes(result, UNAVAILABLE)


def test_without_the_flag_there_is_no_compile_finding(runs):
    code, result = runs["plain"]
    assert result["error"] is None and code == 0
    assert not _codes(result, CODE) and not _codes(result, UNAVAILABLE)


# -- probes.compile_check in this process ------------------------------------------------------------------

class _Printing(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)
        self.b = nn.Linear(8, 4)

    def forward(self, x):
        h = self.bn(self.a(x))
        print("debug", tuple(h.shape))      # BREAK HERE
        return self.b(h)


def test_unit_reports_the_users_line_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model, inputs = _Printing().train(), torch.randn(4, 8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    found = compile_check(model, inputs, __file__)
    assert [f.code for f in found] == [CODE]
    line = _line_of(str(Path(__file__).relative_to(REPO)), "# BREAK" + " HERE")
    assert found[0].location.endswith(f"test_compile_check.py:{line}")
    assert found[0].severity == "info" and "print" in found[0].fix
    # a copy in eval mode ran: the model's BatchNorm statistics, mode, grads and the RNG are untouched
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_unit_clean_model_has_no_findings():
    assert compile_check(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), (torch.randn(2, 8),)) == []


def test_unit_keyword_inputs():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)

        def forward(self, x, mask=None):
            return self.a(x) * mask

    assert compile_check(Masked(), {"x": torch.randn(2, 8), "mask": torch.ones(2, 8)}) == []


def test_unit_explain_failure_is_one_info_finding():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("no forward today")

    found = compile_check(Broken(), torch.randn(2, 8))
    assert _failed(found) == [(CODE, "info", False)]
    assert "no forward today" in found[0].detail


def test_unit_undeepcopyable_model_is_one_info_finding():
    class Locked(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)

        def __deepcopy__(self, memo):
            raise TypeError("cannot copy me")

    found = compile_check(Locked(), torch.randn(2, 2))
    assert _failed(found) == [(CODE, "info", False)] and "cannot copy me" in found[0].detail


def test_unit_breaks_group_by_file_line_and_reason():
    user = str(REPO / "sample_models" / "compile_graph_breaks.py")
    torch_file = str(Path(torch.__file__).parent / "nn" / "modules" / "module.py")

    def reason(text, *frames):
        return SimpleNamespace(reason=text, user_stack=[traceback.FrameSummary(f, n, "forward") for f, n in frames])

    explained = SimpleNamespace(graph_count=5, graph_break_count=4, break_reasons=[
        reason("Unsupported Tensor.item() call\n  Explanation: a python scalar", (user, 24)),
        reason("Unsupported Tensor.item() call\n  Explanation: a python scalar", (user, 24)),   # in a loop
        reason("Failed to trace builtin operator\n  Explanation: print", (user, 30), (torch_file, 1700)),
        reason("something inside torch", (torch_file, 1700)),
    ])
    found = _break_findings(explained, user)
    assert [(f.location, f.evidence["count"]) for f in found] == [
        (location(user, 24), 2),
        (location(user, 30), 1),                             # the user's nearest frame, not torch's
        (None, 1)]                                           # only torch frames: no location
    assert all(f.code == CODE and f.severity == "info" for f in found)


def test_unit_time_limit():
    import time

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)

        def forward(self, x):
            time.sleep(5)
            return self.a(x)

    assert _failed(compile_check(Slow(), torch.randn(2, 2), time_limit=0.5)) == [(CODE, "info", False)]
    t0 = time.perf_counter()
    found = compile_check(Slow(), torch.randn(2, 2), time_limit=2.0)
    assert time.perf_counter() - t0 < 4.5
    assert _failed(found) == [(CODE, "info", False)] and "still tracing" in found[0].detail
    # the alarm is off again afterwards
    import signal
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
