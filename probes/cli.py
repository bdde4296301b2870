"""Command line: `python -m probes check MODEL_FILE`, `python -m probes report RUN_DIR` and
`python -m probes checkpoint MODEL_FILE CHECKPOINT`.

Exit codes: 0 no error-level finding; 1 error-level findings; 2 the file could not be loaded or run.
The user's file runs in a worker subprocess (probes.worker), never in this process.
"""
from __future__ import annotations

import argparse
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

from .errors import fault_location, signal_name
from .findings import has_errors

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2
PUBLIC_FIELDS = ("model", "device", "steps", "run_dir", "error", "findings")
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def build_parser(prog: str = "python -m probes", with_ui: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="ForgeScope: find the silent bugs in PyTorch training.")
    commands = "{ui,check,report,checkpoint}" if with_ui else "{check,report,checkpoint}"
    sub = parser.add_subparsers(dest="command", required=True, metavar=commands)
    if with_ui:
        ui = sub.add_parser("ui", help="open the dashboard on a run directory or a model file",
                            description="Start the dashboard (on 127.0.0.1 only, unless --host says otherwise) "
                                        "and open it in the browser.")
        from app.launch import add_arguments     # the dashboard's launcher: no streamlit import
        add_arguments(ui)
    check = sub.add_parser("check", help="import a model file and train it a few steps with a Probe attached",
                           description="Import MODEL_FILE in a worker process, train it a few steps with a "
                                       "Probe attached, and report what is wrong.")
    check.add_argument("model_file", metavar="MODEL_FILE", help="a .py file defining the model")
    check.add_argument("--steps", type=_positive_int, default=20, metavar="N", help="training steps (default 20)")
    check.add_argument("--batch-size", type=_positive_int, default=8, metavar="B", help="batch size (default 8)")
    check.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto",
                       help="where to train (default auto: cuda, then mps, then cpu)")
    check.add_argument("--model", metavar="NAME", help="the class or function to build when the file has several")
    check.add_argument("--run-dir", default="runs", metavar="DIR", help="where run logs go (default runs)")
    check.add_argument("--timeout", type=_positive_float, default=120.0, metavar="SECONDS",
                       help="stop the check after this long (default 120)")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    check.add_argument("--compile-check", action="store_true",
                       help="also run torch._dynamo.explain on a copy of the model and report each graph "
                            "break (info findings)")
    report = sub.add_parser("report", help="summarise a recorded run (finished or still running)",
                            description="Summarise a run log: a run directory, or a folder of runs (the newest).")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holding run.db) or a folder of runs")
    report.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    doctor = sub.add_parser("checkpoint", help="does a checkpoint load into the model? (never runs pickled code)",
                            description="Build the model from MODEL_FILE in a worker process, read CHECKPOINT "
                                        "with torch.load(weights_only=True) and compare it with the model's "
                                        "state_dict(): missing and unexpected keys, shapes, dtypes, a 'module.' "
                                        "prefix, the model's part of a training checkpoint.")
    doctor.add_argument("model_file", metavar="MODEL_FILE", help="a .py file defining the model")
    doctor.add_argument("checkpoint", metavar="CHECKPOINT", help="a file saved with torch.save")
    doctor.add_argument("--model", metavar="NAME", help="the class or function to build when the file has several")
    doctor.add_argument("--timeout", type=_positive_float, default=120.0, metavar="SECONDS",
                        help="stop after this long (default 120)")
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m probes", with_ui: bool = False) -> int:
    args = build_parser(prog, with_ui).parse_args(argv)
    if args.command == "ui":
        from app.launch import serve
        return serve(args)
    if args.command == "check":
        result = run_check(args.model_file, steps=args.steps, batch_size=args.batch_size, device=args.device,
                           model=args.model, run_dir=args.run_dir, timeout=args.timeout,
                           compile_check=args.compile_check)
    elif args.command == "checkpoint":
        result = CheckJob(args.model_file, model=args.model, timeout=args.timeout, device="cpu",
                          checkpoint=args.checkpoint).start().wait()
    else:
        from .report import report_run
        result = report_run(args.run_dir)
    return emit(result, as_json=args.json, title=f"{args.command} {getattr(args, 'model_file', None) or args.run_dir}")


def run(prog: str = "python -m probes", with_ui: bool = False) -> int:
    """The command line's exit code; a reader that leaves early (`... report runs | head`) is no error."""
    try:
        code = main(prog=prog, with_ui=with_ui)
        sys.stdout.flush()
    except BrokenPipeError:          # the reader left: nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    return code


def console_main() -> int:
    """The `forgescope` command: `forgescope ui`, and check, report and checkpoint as `python -m probes` has them."""
    return run(prog="forgescope", with_ui=True)


def exit_code(result: dict[str, Any]) -> int:
    if result.get("error"):
        return EXIT_FAILED
    return EXIT_FINDINGS if has_errors(result.get("findings", [])) else EXIT_OK


def emit(result: dict[str, Any], as_json: bool, title: str) -> int:
    code = exit_code(result)
    if as_json:
        print(json.dumps({k: result.get(k) for k in PUBLIC_FIELDS}, indent=2, default=str))
    else:
        from .textreport import render
        text = render(result, title)
        print(text, file=sys.stderr if code == EXIT_FAILED and not result.get("model") else sys.stdout)
    return code


def _precheck(path: Path) -> str | None:
    """Fail fast, without starting a worker, on paths that cannot be a model file."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path}: is a folder; give the path of a .py file"
    if path.suffix != ".py":
        return f"{path}: not a Python file (expected a .py file)"
    return None


def run_check(model_file: str, *, steps: int = 20, batch_size: int = 8, device: str = "auto",
              model: str | None = None, run_dir: str = "runs", timeout: float = 120.0,
              run_name: str | None = None, compile_check: bool = False) -> dict[str, Any]:
    """Check a model file in a worker subprocess; returns the result dict (public fields + error_location)."""
    job = CheckJob(model_file, steps=steps, batch_size=batch_size, device=device, model=model, run_dir=run_dir,
                   timeout=timeout, run_name=run_name, compile_check=compile_check)
    job.start()
    return job.wait()


class CheckJob:
    """One check in a worker subprocess, started without waiting: `poll()`, `progress()`, `cancel()`.

    The command line waits on it (`wait()`); the dashboard polls it from its page so the server never
    blocks and never runs the user's file itself.
    """

    def __init__(self, model_file: str, *, steps: int = 20, batch_size: int = 8, device: str = "auto",
                 model: str | None = None, run_dir: str = "runs", timeout: float = 120.0,
                 run_name: str | None = None, compile_check: bool = False, checkpoint: str | None = None):
        self.path = Path(model_file)
        self.steps = steps
        self.timeout = timeout
        self.config = {"model_file": str(self.path), "steps": steps, "batch_size": batch_size, "device": device,
                       "model": model, "run_dir": run_dir, "run_name": run_name, "timeout": timeout,
                       "compile_check": compile_check, "checkpoint": checkpoint}
        self.proc: subprocess.Popen | None = None
        self.cancelled = False
        self._tmp: str | None = None
        self._started = 0.0
        self._finished_at: float | None = None
        self._timed_out = False
        self._result: dict[str, Any] | None = None
        self._base = {"model": None, "device": None, "steps": 0, "run_dir": None, "error": None, "findings": []}

    def start(self) -> "CheckJob":
        problem = _precheck(self.path)
        checkpoint = self.config.get("checkpoint")
        if problem is None and checkpoint and not Path(checkpoint).is_file():
            problem = f"{checkpoint}: no such file" if not Path(checkpoint).exists() else f"{checkpoint}: is a folder"
        if problem:
            self._result = {**self._base, "error": problem}
            return self
        self._tmp = tempfile.mkdtemp(prefix="forgescope-check-")
        tmp = self._tmp
        self.config.update(result_file=os.path.join(tmp, "result.json"), fault_file=os.path.join(tmp, "fault.txt"),
                           run_file=os.path.join(tmp, "run_dir.txt"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        # the worker times its own hang dump from this wall-clock deadline (its torch import counts too)
        self.config["deadline"] = time.time() + self.timeout
        config_file = os.path.join(tmp, "config.json")
        Path(config_file).write_text(json.dumps(self.config))
        with open(os.path.join(tmp, "output.txt"), "wb") as output:
            self.proc = subprocess.Popen([sys.executable, "-m", "probes.worker", config_file],
                                         stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self._started = time.monotonic()
        return self

    @property
    def _result_path(self) -> Path:
        return Path(self.config["result_file"])

    @property
    def _fault_path(self) -> Path:
        return Path(self.config["fault_file"])

    def run_dir(self) -> str | None:
        """The run log's directory, as soon as the worker has opened it."""
        run_file = Path(self.config.get("run_file", ""))
        if self._result is not None:
            return self._result.get("run_dir")
        try:
            return run_file.read_text() or None
        except OSError:
            return None

    def progress(self) -> tuple[int, int]:
        """(steps recorded so far, steps asked for), read from the run log the worker is writing."""
        if self._result is not None:
            return min(int(self._result.get("steps") or 0), self.steps), self.steps
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
        while not self.poll():
            try:
                self.proc.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                pass
        return self._result

    def result(self) -> dict[str, Any] | None:
        return self._result

    def cancel(self) -> None:
        """Stop the worker now; the result says it was cancelled, with what it had recorded."""
        if self._result is not None or self.proc is None:
            return
        self.cancelled = True
        _kill_group(self.proc)
        self.poll()

    def _collect(self) -> dict[str, Any]:
        base, path = self._base, self.path
        if self._result_path.exists() and not self.cancelled:  # finished its work, even if it then hung
            return {**base, **json.loads(self._result_path.read_text())}
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
        return {**base, **salvaged, "error": error, "error_location": where, "run_dir": recorded}


_OS_EXIT = re.compile(r"^ForgeScope: os\._exit\((?P<code>.*)\) called$", re.MULTILINE)
_EXIT_GRACE_S = 5.0     # how long a worker that wrote its result may take to exit before it is killed
_POLL_S = 0.05


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


if __name__ == "__main__":
    sys.exit(main())
