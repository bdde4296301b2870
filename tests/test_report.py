"""`python -m probes report` on a run that a real training process is still writing, then on the finished run."""
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRAINING = textwrap.dedent("""
    import sys, time, torch
    sys.path.insert(0, sys.argv[2])
    from probes import Probe
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [torch.nn.Linear(8, 8)]
            self.out = torch.nn.Linear(8, 2)
        def forward(self, x):
            return self.out(self.blocks[0](x))
    model = Plain()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with Probe(model, opt, run_dir=sys.argv[1], run_name="live") as probe:
        for step in range(100000):
            opt.zero_grad(); model(torch.randn(4, 8)).pow(2).mean().backward(); opt.step()
            if step == 20:
                print("going", flush=True)
            if open(sys.argv[3]).read() == "stop":
                break
            time.sleep(0.002)
""")


def report(run: Path):
    proc = subprocess.run([sys.executable, "-m", "probes", "report", str(run), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout)


def test_report_follows_a_live_run_and_then_the_finished_one(tmp_path):
    stop = tmp_path / "stop"
    stop.write_text("go")
    trainer = subprocess.Popen([sys.executable, "-c", TRAINING, str(tmp_path), str(ROOT), str(stop)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert trainer.stdout.readline().strip() == "going"
        code, live = report(tmp_path / "live")
        assert code == 1                                   # the plain list is an error-level finding
        assert live["steps"] >= 21 and live["model"] == "Plain" and live["error"] is None
        assert [f["code"] for f in live["findings"]] == ["unregistered-module"]
        time.sleep(0.3)
        code, later = report(tmp_path / "live")
        assert later["steps"] > live["steps"]              # it keeps up with the writer
    finally:
        stop.write_text("stop")
        assert trainer.wait(timeout=60) == 0
    code, done = report(tmp_path / "live")
    assert code == 1 and done["steps"] >= later["steps"]
    assert [f["code"] for f in done["findings"]] == ["unregistered-module"]   # said once, not twice
    text = subprocess.run([sys.executable, "-m", "probes", "report", str(tmp_path / "live")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120).stdout
    assert "finished" in text and "unregistered-module" in text
