"""A check run as the worker runs it, in a child forked from the test process (which has imported torch once).

`python -m probes check` starts a worker process that imports torch (about 1-2 s of CPU) and then runs
`probes.worker.Check(config).run()` on the model file. Tests about *what a check finds* (the samples, the
dashboard's pages on a checked model) need that second part only: here it runs in a forked child of the
test process, so each check costs the check and nothing else, and the child's global state (hooks, default
dtype, the user's imports) dies with it as a worker's would. The command line itself — the subprocess, its
JSON, its exit codes, crashes, hangs and kills — stays tested through the real `python -m probes` in
tests/test_cli.py.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check(model_file: str | os.PathLike, run_dir: str | os.PathLike, *, steps: int = 5, batch_size: int = 8,
          device: str = "cpu", model: str | None = None, timeout: float = 180.0) -> dict:
    """The worker's result dict for `model_file` (relative paths read from the repository root, as the
    command line run there reads them). Raises AssertionError when the child dies or hangs."""
    import torch  # noqa: F401 - imported here, once per test process, so that every child starts warm

    import probes.worker  # noqa: F401
    from probes.contract import CheckConfig
    config = CheckConfig(str(model_file), steps=steps, batch_size=batch_size, device=device, model=model,
                         run_dir=str(run_dir))
    with tempfile.TemporaryDirectory(prefix="forgescope-warm-") as tmp:
        out = os.path.join(tmp, "result.json")
        pid = os.fork()
        if pid == 0:        # the child: the worker's part of a check, then gone
            try:
                os.setsid()
                os.chdir(ROOT)
                with open(os.devnull, "w") as null:     # the model file's prints stay out of the test output
                    os.dup2(null.fileno(), 1)
                    os.dup2(null.fileno(), 2)
                from probes.worker import Check
                result = Check(config).run()
            except BaseException:       # noqa: BLE001 - reported to the test as it is
                result = {"harness_error": traceback.format_exc()}
            try:
                Path(out).write_text(json.dumps(result, default=str))
            finally:
                sys.stdout.flush()
                os._exit(0)
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"{model_file}: the check was still running after {timeout:g} s")
            time.sleep(0.02)
        if not os.path.exists(out):
            raise AssertionError(f"{model_file}: the forked check died (wait status {status})")
        result = json.loads(Path(out).read_text())
    assert "harness_error" not in result, result.get("harness_error")
    return result
