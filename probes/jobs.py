"""A check in a worker subprocess, supervised: started, polled, timed out, cancelled, its crash explained.

The command line waits on a `CheckJob` (`run_check()`); the dashboard polls one from its pages (the sidebar's
check and the checkpoint doctor), so the server never blocks and never runs the user's file itself. The job
hands the worker a `CheckConfig` and reads back a `CheckResult` (probes/contract.py); when the worker dies
without writing one, the job says why (a native crash, os._exit, the OOM killer, a hang it stopped) and keeps
what the worker had recorded in its run log. Plain processes and files: no torch here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .contract import CheckConfig, CheckResult
from .errors import fault_location, signal_name

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_OS_EXIT = re.compile(r"^ForgeScope: os\._exit\((?P<code>.*)\) called$", re.MULTILINE)
_EXIT_GRACE_S = 5.0     # how long a worker that wrote its result may take to exit before it is killed
_POLL_S = 0.05


def run_check(model_file: str | os.PathLike | CheckConfig, **settings: Any) -> dict[str, Any]:
    """Check a model file in a worker subprocess (settings: CheckConfig's fields); returns the result dict
    (CheckResult.to_dict(): the public fields, error_location, stage, notes)."""
    result = CheckJob(model_file, **settings).start().wait()
    from .patches import attach
    attach(result["findings"])          # the `patch` of each finding whose fix is mechanical
    return result


class CheckJob:
    """One check in a worker subprocess, started without waiting: `poll()`, `progress()`, `cancel()`, `wait()`.

    `CheckJob(model_file, steps=..., ...)` takes CheckConfig's fields (its defaults are the config's), or
    `CheckJob(config)` a whole CheckConfig.
    """

    def __init__(self, model_file: str | os.PathLike | CheckConfig, **settings: Any):
        config = model_file if isinstance(model_file, CheckConfig) else CheckConfig(model_file=os.fspath(model_file))
        self.config = dataclasses.replace(config, **settings)
        self.path = Path(self.config.model_file)
        self.proc: subprocess.Popen | None = None
        self.cancelled = False
        self._tmp: str | None = None
        self._started = 0.0
        self._finished_at: float | None = None
        self._timed_out = False
        self._result: CheckResult | None = None

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def timeout(self) -> float:
        return self.config.timeout

    def start(self) -> "CheckJob":
        problem = _precheck(self.path)
        checkpoint = self.config.checkpoint
        if problem is None and checkpoint and not Path(checkpoint).is_file():
            problem = f"{checkpoint}: no such file" if not Path(checkpoint).exists() else f"{checkpoint}: is a folder"
        if problem:
            self._result = CheckResult(error=problem)
            return self
        self._tmp = tmp = tempfile.mkdtemp(prefix="forgescope-check-")
        # the worker times its own hang dump from this wall-clock deadline (its torch import counts too)
        self.config = dataclasses.replace(
            self.config, result_file=os.path.join(tmp, "result.json"), fault_file=os.path.join(tmp, "fault.txt"),
            run_file=os.path.join(tmp, "run_dir.txt"), deadline=time.time() + self.timeout)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        config_file = os.path.join(tmp, "config.json")
        Path(config_file).write_text(self.config.to_json())
        with open(os.path.join(tmp, "output.txt"), "wb") as output:
            self.proc = subprocess.Popen([sys.executable, "-m", "probes.worker", config_file],
                                         stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self._started = time.monotonic()
        return self

    @property
    def _result_path(self) -> Path:
        return Path(self.config.result_file)

    @property
    def _fault_path(self) -> Path:
        return Path(self.config.fault_file)

    def run_dir(self) -> str | None:
        """The run log's directory, as soon as the worker has opened it."""
        if self._result is not None:
            return self._result.run_dir
        if not self.config.run_file:
            return None
        try:
            return Path(self.config.run_file).read_text() or None
        except OSError:
            return None

    def progress(self) -> tuple[int, int]:
        """(steps recorded so far, steps asked for), read from the run log the worker is writing."""
        if self._result is not None:
            return min(int(self._result.steps or 0), self.steps), self.steps
        run = self.run_dir()
        if not run:
            return 0, self.steps
        try:
            from .runlog import RunReader
            with RunReader(run) as reader:
                return min(reader.step_count(), self.steps), self.steps
        except Exception:       # noqa: BLE001 - a log being created is not an error for a progress bar
            return 0, self.steps

    def poll(self) -> bool:
        """True once the job is over (result ready); never blocks longer than a moment."""
        if self._result is not None:
            return True
        assert self.proc is not None
        now = time.monotonic()
        if self.proc.poll() is None:
            if self._finished_at is None and self._result_path.exists():
                self._finished_at = now
            if self._finished_at is not None and now - self._finished_at > _EXIT_GRACE_S:
                _kill_group(self.proc)
            elif now - self._started >= self.timeout:
                if self._finished_at is None:
                    _request_dump(self.proc, self._fault_path)
                    self._timed_out = True
                _kill_group(self.proc)
            else:
                return False
        self._result = self._collect()
        shutil.rmtree(self._tmp, ignore_errors=True)
        return True

    def wait(self) -> dict[str, Any]:
        """Block until the job is over; its result dict (CheckResult.to_dict())."""
        while not self.poll():
            try:
                self.proc.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                pass
        return self._result.to_dict()

    def result(self) -> dict[str, Any] | None:
        """The result dict once the job is over (see wait()), else None."""
        return self._result.to_dict() if self._result is not None else None

    def cancel(self) -> None:
        """Stop the worker now; the result says it was cancelled, with what it had recorded."""
        if self._result is not None or self.proc is None:
            return
        self.cancelled = True
        _kill_group(self.proc)
        self.poll()

    def _collect(self) -> CheckResult:
        path = self.path
        if self._result_path.exists() and not self.cancelled:  # finished its work, even if it then hung
            try:
                return CheckResult.from_dict(json.loads(self._result_path.read_text()))
            except ValueError as e:     # not JSON, or not a result: ours to fix, never the user's
                return CheckResult(error=f"{path}: ForgeScope could not read its worker's result ({e}); this "
                                         f"is a bug of ForgeScope, not a problem in {path.name}")
        fault = self._fault_path.read_text(errors="replace") if self._fault_path.exists() else ""
        where = fault_location(fault, path)
        prefix = f"{where}: " if where else f"{path}: "
        called_exit = _OS_EXIT.search(fault)
        returncode = self.proc.returncode
        if self.cancelled:
            error = f"{path}: check cancelled"
        elif self._timed_out:
            error = (f"{prefix}still running after {self.timeout:g} s, so the check was stopped "
                     f"(an endless loop? if it is just slow, raise --timeout)")
        elif returncode < 0 and -returncode == getattr(signal, "SIGKILL", None):
            # nothing in the process sends itself SIGKILL: the kernel's OOM killer does, or a user's kill -9
            error = (f"{prefix}the worker process was killed from outside (SIGKILL), most often because the "
                     f"system ran out of memory (the kernel's OOM killer)"
                     + ("; the steps it recorded are kept" if self.run_dir() else ""))
        elif returncode < 0:
            error = (f"{prefix}the worker process crashed ({signal_name(returncode)}): a native crash "
                     f"or os.abort() in the model's code")
        elif called_exit:
            error = (f"{prefix}the file called os._exit({called_exit['code']}), which ended the check "
                     f"before it finished")
        else:
            output = Path(self._tmp, "output.txt")
            tail = output.read_text(errors="replace").strip().splitlines()[-3:] if output.exists() else []
            error = (f"{prefix}the worker process exited ({signal_name(returncode)}) before finishing, "
                     f"e.g. os._exit()" + (f"; last output: {' | '.join(tail)}" if tail else ""))
        recorded = self.run_dir()      # the worker names its run log as soon as it opens it
        salvaged = _salvage_run(recorded, error) if recorded else {}
        return CheckResult(**salvaged, error=error, error_location=where, run_dir=recorded)


def _precheck(path: Path) -> str | None:
    """Fail fast, without starting a worker, on paths that cannot be a model file."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path}: is a folder; give the path of a .py file"
    if path.suffix != ".py":
        return f"{path}: not a Python file (expected a .py file)"
    return None


def _request_dump(proc: subprocess.Popen, fault_path: Path) -> None:
    """Ask a hung worker for its Python stack (faulthandler on SIGUSR1): it names the user's line."""
    sig = getattr(signal, "SIGUSR1", None)
    if sig is None:
        return
    before = fault_path.stat().st_size if fault_path.exists() else 0
    try:
        os.kill(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        return
    give_up = time.monotonic() + 2.0
    size = before
    while time.monotonic() < give_up and proc.poll() is None:
        time.sleep(_POLL_S)
        now_size = fault_path.stat().st_size if fault_path.exists() else 0
        if now_size > before and now_size == size:      # written, and no longer growing
            return
        size = now_size


def _salvage_run(run_dir: str, error: str) -> dict[str, Any]:
    """The worker died without closing its run log: record why there (so `report` says what `check` said)
    and return what it had recorded (model, device, steps, findings)."""
    try:
        from .report import report_run
        from .runlog import DB_NAME, RunWriter
        writer = RunWriter(Path(run_dir) / DB_NAME)
        try:
            writer.set_meta(status="failed", ended=time.time(), error=error)
        finally:
            writer.close()
        recorded = report_run(run_dir)
    except Exception:       # noqa: BLE001 - the check's own result matters more than this note
        return {}
    return {k: recorded[k] for k in ("model", "device", "steps", "findings") if recorded.get(k) is not None}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()
