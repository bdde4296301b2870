"""Golden tests for the readable report: `check` text output compared with tests/test_output/*.txt.

After an intended change of wording, regenerate with `python -m pytest tests/test_textreport.py --overwrite`
and review the diff.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from probes.textreport import render

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "test_output"

CASES = {
    "unregistered_module": ["sample_models/unregistered_module.py"],
    "missing_super_init": ["sample_models/missing_super_init.py"],
    "eval_mode_missing": ["sample_models/eval_mode_missing.py"],
    "clean_mlp": ["sample_models/mlp.py"],
    "bad_shape": ["tests/fixtures/model_files/bad_shape.py"],
}


def compare(name: str, text: str, overwrite: bool) -> None:
    golden = GOLDEN / f"{name}.txt"
    if overwrite or not golden.exists():
        golden.write_text(text)
        if not overwrite:
            pytest.fail(f"{golden.name} did not exist: written now, review it and run again")
    assert text == golden.read_text(), f"output differs from {golden}; rerun with --overwrite if intended"


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_text_matches_golden(name, tmp_path, request):
    proc = subprocess.run([sys.executable, "-m", "probes", "check", *CASES[name], "--steps", "5",
                           "--run-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=180)
    text = (proc.stdout + proc.stderr).replace(str(tmp_path), "<run_dir>")
    text = re.sub(r"<run_dir>/\d{8}-\d{6}-", "<run_dir>/<date>-<time>-", text)     # run names carry the time
    text = "\n".join(line.rstrip() for line in text.splitlines()) + f"\n(exit {proc.returncode})\n"
    compare(name, text, request.config.getoption("--overwrite"))


def test_render_orders_by_severity_and_wraps_long_text(request):
    finding = {"code": "x-code", "severity": "warning", "title": "a title", "module": "body.0",
               "location": "model.py:12", "evidence": {}, "detail": "word " * 40, "fix": "do this."}
    result = {"model": "Net", "device": "cpu", "steps": 3, "run_dir": "runs/r", "error": None,
              "findings": [dict(finding, code="info-code", severity="info"), finding,
                           dict(finding, code="err-code", severity="error", module="")]}
    text = render(result, "check model.py")
    assert text.index("err-code") < text.index("x-code") < text.index("info-code")
    assert max(len(line) for line in text.splitlines()) <= 100
    compare("render_synthetic", text + "\n", request.config.getoption("--overwrite"))
