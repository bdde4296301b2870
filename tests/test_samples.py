"""Every bundled sample, checked through the real command line: each bug found, each twin clean."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"

# file -> the finding codes `check` must report (and nothing else)
EXPECTED = {
    "mlp.py": [],
    "cnn.py": [],
    "transformer.py": [],
    "unregistered_module.py": ["unregistered-module"],
    "unregistered_module_fixed.py": [],
    "unregistered_parameter.py": ["unregistered-parameter", "unregistered-parameter"],
    "unregistered_parameter_fixed.py": [],
    "missing_super_init.py": ["missing-super-init"],
    "missing_super_init_fixed.py": [],
}


def test_every_sample_is_covered():
    assert sorted(p.name for p in SAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "probes", "check", f"sample_models/{name}", "--steps", "3",
                           "--run-dir", str(tmp_path), "--json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    result = json.loads(proc.stdout)
    assert result["error"] is None, result["error"]
    assert sorted(f["code"] for f in result["findings"]) == sorted(EXPECTED[name])
    assert proc.returncode == (1 if EXPECTED[name] else 0)
    for finding in result["findings"]:
        assert finding["location"].startswith(f"sample_models/{name}:")
    if name != "missing_super_init.py":       # that one cannot even be built
        assert result["steps"] == 3
