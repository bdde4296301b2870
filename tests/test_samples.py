"""Every bundled sample, checked through the real command line: each bug found, each twin clean.

Each sample's docstring ends with a line `Finds: code, code` (or `Finds: nothing`): exactly the finding
codes `python -m probes check` must report for it — errors and warnings; info findings are not counted.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "sample_models").glob("*.py"))


def expected_codes(path: Path) -> list[str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    lines = [line for line in doc.splitlines() if line.startswith("Finds:")]
    assert lines, f"{path.name}: the docstring needs a 'Finds: ...' line"
    value = lines[-1].removeprefix("Finds:").strip()
    return [] if value == "nothing" else sorted(c.strip() for c in value.split(","))


def test_there_are_samples_of_both_kinds():
    codes = [expected_codes(p) for p in SAMPLES]
    assert any(codes) and any(not c for c in codes)


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample(path, tmp_path):
    expected = expected_codes(path)
    proc = subprocess.run([sys.executable, "-m", "probes", "check", f"sample_models/{path.name}", "--steps", "5",
                           "--run-dir", str(tmp_path), "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    result = json.loads(proc.stdout)
    assert result["error"] is None, result["error"]
    reported = [f for f in result["findings"] if f["severity"] != "info"]
    assert sorted(f["code"] for f in reported) == expected, json.dumps(reported, indent=1)
    errors = any(f["severity"] == "error" for f in reported)
    assert proc.returncode == (1 if errors else 0)
    for finding in reported:
        if finding["location"] is not None:
            assert finding["location"].startswith(f"sample_models/{path.name}:")
