"""The command line: `python -m probes check|report`, its JSON, exit codes and messages.

Two tiers. What only the processes can show runs the real `python -m probes` in a subprocess: a worker
that aborts, calls os._exit, hangs, is killed or cannot exit, a memory cap, a missing file, one JSON run
and report end to end, one argument error. What the worker's own code decides (the message for a file that
fails, the model it picks, the hooks of the model file) runs that code in a child forked from this process
(tests/warm.py) and prints the result with the command line's own emit(), as `check` prints it; argument
errors go through the command line's main() in this process.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

import warm

REPO = Path(__file__).resolve().parent.parent
MODELS = Path(__file__).resolve().parent / "fixtures" / "model_files"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PUBLIC_KEYS = {"model", "device", "steps", "run_dir", "error", "findings"}
FINDING_KEYS = {"code", "severity", "title", "detail", "module", "location", "evidence", "fix"}
SEVERITIES = {"error", "warning", "info"}


@dataclass
class Run:
    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict:
        """The one JSON object that --json prints (and nothing else on stdout)."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"stdout is not one JSON object ({e}):\n{self.stdout}\nstderr:\n{self.stderr}")

    def __str__(self) -> str:
        return f"probes {' '.join(self.args)} -> exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def probes(*args, env: dict | None = None, timeout: float = 240) -> Run:
    """Run `python -m probes ARGS` from the repository root, as a user would."""
    args = [str(a) for a in args]
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "probes", *args], cwd=REPO, capture_output=True, text=True,
                          encoding="utf-8", errors="replace", timeout=timeout,
                          env={**os.environ, **(env or {})})
    return Run(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


def checked(path, run_dir, *, steps: int, model_name: str | None = None, batch_size: int = 8,
            as_json: bool = True) -> Run:
    """`python -m probes check PATH --steps N [--model NAME] [--json]` with the worker's part run in a forked
    child (tests/warm.py) and the result printed by the command line's own emit()."""
    from probes.cli import emit
    t0 = time.monotonic()
    result = warm.check(path, run_dir, steps=steps, batch_size=batch_size, device="auto", model=model_name)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = emit(result, as_json=as_json, title=f"check {path}")
    args = ["check", str(path), "--steps", str(steps)] + (["--json"] if as_json else [])
    return Run(args, code, out.getvalue(), err.getvalue(), time.monotonic() - t0)


def in_process(*args) -> Run:
    """`python -m probes ARGS` through the command line's main() in this process (argument errors, report)."""
    from probes.cli import main
    args = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exit:          # argparse's own exit
            code = exit.code
    return Run(args, code, out.getvalue(), err.getvalue(), time.monotonic() - t0)


def model(name: str) -> Path:
    path = MODELS / name
    assert path.exists(), path
    return path


def line_of(name: str, snippet: str) -> int:
    """The line number of the one fixture line containing `snippet`."""
    hits = [i for i, text in enumerate(model(name).read_text().splitlines(), 1) if snippet in text]
    assert len(hits) == 1, f"{snippet!r} is on lines {hits} of {name}"
    return hits[0]


def read_run(run_dir: str):
    """(meta, scalars frame, step count, last tree) of a run log, read with the public RunReader."""
    from probes.runlog import RunReader     # plain data: no torch in the test process
    with RunReader(run_dir) as reader:
        return reader.meta(), reader.scalars(), reader.step_count(), reader.tree()


def assert_public_shape(result: dict) -> None:
    assert set(result) == PUBLIC_KEYS, result
    assert isinstance(result["findings"], list)
    for f in result["findings"]:
        assert set(f) - {"patch"} == FINDING_KEYS, f        # patch: optional, the fix as a unified diff
        assert isinstance(f.get("patch", ""), str), f
        assert f["severity"] in SEVERITIES, f
        assert isinstance(f["evidence"], dict), f


def assert_short_failure(run: Run, *expected: str) -> None:
    """Exit 2 with a few lines that contain every expected piece and no traceback."""
    assert run.code == 2, run
    assert "Traceback" not in run.output, run
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 5, run
    for piece in expected:
        assert piece in run.output, f"{piece!r} not in the output of {run}"


# -- 1. faults: exit 2, a short message naming the file and the user's line ------------------------------
FAULTS = {
    "syntax-error": ("syntax_error.py", [], lambda: [f"syntax_error.py:{line_of('syntax_error.py', 'nn.Linear(4, 2')}",
                                                     "syntax error"]),
    "missing-package": ("missing_import.py", [], lambda: [
        f"missing_import.py:{line_of('missing_import.py', 'import forgescope_no_such_package_xyz')}",
        "No module named 'forgescope_no_such_package_xyz'"]),
    "no-model": ("no_model.py", [], lambda: ["no_model.py", "no model found", "build_model()"]),
    "constructor-raises": ("ctor_raises.py", [], lambda: [
        f"ctor_raises.py:{line_of('ctor_raises.py', 'raise ValueError')} in __init__",
        "ValueError: hidden size must be even"]),
    "shape-mismatch": ("bad_shape.py", [], lambda: [
        "bad_shape.py:13 in forward: mat1 and mat2 shapes cannot be multiplied (8x32 and 64x4); "
        "module b (Linear 64→4) received input of shape (8, 32)"]),
    "os-abort": ("aborts.py", [], lambda: [f"aborts.py:{line_of('aborts.py', 'os.abort()')} in forward",
                                           "SIGABRT"]),
    "sys-exit-at-import": ("exit_at_import.py", [], lambda: [
        f"exit_at_import.py:{line_of('exit_at_import.py', 'sys.exit(3)')}", "sys.exit(3)", "imported"]),
    "os-exit-in-forward": ("os_exit_in_forward.py", [], lambda: [
        f"os_exit_in_forward.py:{line_of('os_exit_in_forward.py', 'os._exit(0)')} in forward", "os._exit(0)"]),
    "not-python": ("notes.txt", [], lambda: ["notes.txt", "not a Python file"]),
    "make-batch-not-a-pair": ("make_batch_not_a_pair.py", [], lambda: [
        f"make_batch_not_a_pair.py:{line_of('make_batch_not_a_pair.py', 'def make_batch')}: make_batch(8) must "
        f"give (inputs, targets), got Tensor"]),
    "forward-returns-none": ("forward_returns_none.py", [], lambda: [
        f"forward_returns_none.py:{line_of('forward_returns_none.py', 'def forward')}: forward returned None"]),
    "loss-not-scalar": ("loss_not_scalar.py", [], lambda: [     # reduction="none": one loss per sample
        f"loss_not_scalar.py:{line_of('loss_not_scalar.py', 'def loss_fn')}: the loss is (8, 1), not a scalar",
        ".mean()"]),
}


# faults that end the worker process itself (a native abort, os._exit) or never reach a worker (not a .py
# file): only the real command line shows them; the others are the worker's own message for the file
PROCESS_FAULTS = {"os-abort", "os-exit-in-forward", "not-python"}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_gives_exit_2_and_a_short_message(fault, tmp_path):
    name, extra, expected = FAULTS[fault]
    if fault in PROCESS_FAULTS:
        run = probes("check", model(name), "--steps", "2", "--run-dir", tmp_path / "runs", *extra)
    else:
        run = checked(model(name), tmp_path / "runs", steps=2, as_json=False)
    assert_short_failure(run, *expected())


def test_a_model_too_large_for_memory_says_so_plainly(tmp_path):
    """A 4 TiB layer, checked with the address space capped at 16 GiB (inherited by the worker): the
    allocation fails the same way on every machine, and the OOM killer is never involved."""
    import resource

    limit = 16 * 2 ** 30

    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    args = ["check", str(model("too_large.py")), "--steps", "2", "--run-dir", str(tmp_path / "runs"),
            "--device", "cpu"]          # no CUDA start-up under the cap: the layer fails as it is built
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "probes", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=240, preexec_fn=cap_memory)
    run = Run(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
    line = line_of("too_large.py", "nn.Linear(2**20, 2**20)")
    # the worker imported torch and the file under the cap: the failure is the user's line, in __init__
    assert_short_failure(run, f"too_large.py:{line} in __init__: not enough memory: the model asked for 4.0 TiB "
                              f"in one tensor", "check it on a machine with more memory")
    assert "DefaultCPUAllocator" not in run.output and "enforce fail" not in run.output


@pytest.mark.parametrize("raw, said", [
    ("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
     "allocate 4398046511104 bytes. Error code 12 (Cannot allocate memory)",
     "not enough memory: the model asked for 4.0 TiB in one tensor; make the model (or the batch) smaller or "
     "check it on a machine with more memory"),
    ("DefaultCPUAllocator: not enough memory: you tried to allocate 1610612736 bytes.",     # Windows' wording
     "not enough memory: the model asked for 1.5 GiB in one tensor"),
    ("CUDA out of memory. Tried to allocate 4096.00 GiB. GPU 0 has a total capacity of 79.15 GiB of which "
     "78.60 GiB is free. Including non-PyTorch memory, this process has 560.00 MiB memory in use. Of the "
     "allocated memory 0 bytes is allocated by PyTorch, and 0 bytes is reserved by PyTorch but unallocated.",
     "not enough GPU memory: the model asked for 4.0 TiB in one tensor (GPU 0 has 78.6 GiB free of 79.2 GiB); "
     "make the model (or the batch) smaller or check it on a GPU with more memory"),
    ("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; 14.56 GiB already "
     "allocated; 3.44 MiB free; 14.71 GiB reserved in total by PyTorch)",                     # torch < 2.1
     "not enough GPU memory: the model asked for 20.0 MiB in one tensor (GPU 0 has 3.4 MiB free of 15.8 GiB)"),
    ("MPS backend out of memory (MPS allocated: 18.10 GB, other allocations: 384.00 KB, max allowed: 18.13 GB). "
     "Tried to allocate 256.00 MiB on private pool.",
     "not enough MPS memory: the model asked for 256.0 MiB in one tensor"),
])
def test_out_of_memory_messages_are_said_plainly(raw, said):
    """The allocators' wording (CPU, CUDA old and new, MPS) as the worker reports it, without a GPU: torch's
    own exception types carry these texts (torch.OutOfMemoryError for CUDA)."""
    from probes.errors import exception_text
    import torch

    for exc in (RuntimeError(raw), torch.OutOfMemoryError(raw)):
        text = exception_text(exc)
        assert text.startswith(said), text
        assert "enforce fail" not in text and "OutOfMemoryError" not in text and "\n" not in text
    assert exception_text(RuntimeError("mat1 and mat2 shapes cannot be multiplied")) == \
        "mat1 and mat2 shapes cannot be multiplied"


def test_a_worker_killed_from_outside_says_so_and_keeps_its_steps(tmp_path):
    """SIGKILL mid-run, as the kernel's OOM killer (or a user's kill -9) sends it: the result names the file
    and says what most likely happened, and the steps recorded before the kill are kept in the run log."""
    import signal

    from probes.jobs import CheckJob
    job = CheckJob(str(REPO / "sample_models" / "mlp.py"), steps=100_000, run_dir=str(tmp_path / "runs"),
                   timeout=300).start()
    try:
        deadline = time.monotonic() + 120
        while job.progress()[0] == 0:
            assert job.proc.poll() is None, "the worker ended before its first step"
            assert time.monotonic() < deadline, "no step recorded in 120 s"
            time.sleep(0.05)
        os.kill(job.proc.pid, signal.SIGKILL)          # the worker only, as the OOM killer picks one process
        result = job.wait()
    finally:
        job.cancel()
    assert_public_shape({k: result[k] for k in PUBLIC_KEYS})
    assert result["error"].startswith(f"{REPO / 'sample_models' / 'mlp.py'}: the worker process was killed from "
                                      f"outside (SIGKILL), most often because the system ran out of memory")
    assert "native crash" not in result["error"]
    assert result["model"] == "MLP" and result["steps"] > 0 and result["run_dir"]
    meta, scalars, steps, _ = read_run(result["run_dir"])
    assert steps == result["steps"] and scalars["loss"].notna().sum() == steps
    assert meta["status"] == "failed" and meta["error"] == result["error"]     # `report` says what `check` said


def test_endless_loop_is_stopped_at_the_timeout(tmp_path):
    # one step is recorded, then forward spins: the check stops it, names the line, and the run log says so
    runs = tmp_path / "runs"
    # 20 s: importing torch and reaching the first step takes 4 s here, but 12 s was seen on a busy machine
    run = probes("check", model("infinite_loop.py"), "--steps", "3", "--run-dir", runs, "--timeout", "20")
    line = line_of("infinite_loop.py", "while self.calls > 1")
    assert_short_failure(run, f"infinite_loop.py:{line} in forward", "still running after 20 s", "stopped",
                         "model Spins", "1 training step")
    assert run.seconds < 20 + 20, f"the check ran {run.seconds:.0f} s despite --timeout 20"
    report = probes("report", runs, "--json")
    assert report.code == 2, report
    result = report.json()
    assert result["model"] == "Spins" and result["steps"] == 1
    assert f"infinite_loop.py:{line} in forward: still running" in result["error"]


def test_shape_mismatch_line_is_the_offending_line():
    # the exact line asserted above is the call of layer b in forward
    assert line_of("bad_shape.py", "return self.b(h)") == 13
    assert line_of("bad_shape.py", "nn.Linear(64, 4)") == 9


def test_missing_path(tmp_path):
    missing = tmp_path / "nope" / "model.py"
    run = probes("check", missing, "--run-dir", tmp_path / "runs")
    assert_short_failure(run, str(missing), "no such file")
    assert not (tmp_path / "runs").exists()


def test_sys_exit_in_forward_json(tmp_path):
    run = probes("check", model("exit_in_forward.py"), "--steps", "2", "--run-dir", tmp_path / "runs", "--json")
    assert run.code == 2, run
    result = run.json()
    assert_public_shape(result)
    assert result["model"] == "Quits"
    assert result["findings"] == []
    line = line_of("exit_in_forward.py", "sys.exit(3)")
    assert f"exit_in_forward.py:{line} in forward" in result["error"]
    assert "sys.exit(3)" in result["error"]
    assert "Traceback" not in run.output and "\n" not in result["error"]


def test_finished_worker_that_cannot_exit_still_gives_its_result(tmp_path):
    # a non-daemon thread keeps the worker alive after it wrote its result: the check must not wait for
    # --timeout and then throw the result away
    run = probes("check", model("lingering_thread.py"), "--steps", "2", "--run-dir", tmp_path / "runs",
                 "--timeout", "45", "--json")
    assert run.code == 0, run
    result = run.json()
    assert result["error"] is None and result["model"] == "Fine" and result["steps"] == 2
    assert run.seconds < 40, f"took {run.seconds:.0f} s: waited for the timeout"


# -- 2. missing super().__init__() ----------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("layer_before_super.py", "Early"), ("never_super.py", "NoSuper")])
def test_missing_super_init_is_a_finding(name, cls, tmp_path):
    run = checked(model(name), tmp_path / "runs", steps=2)
    assert run.code == 1, run
    result = run.json()
    assert_public_shape(result)
    assert result["error"] is None
    assert result["model"] == cls
    found = [f for f in result["findings"] if f["code"] == "missing-super-init"]
    assert len(found) == 1, result["findings"]
    init_line = line_of(name, "def __init__")
    assert found[0]["severity"] == "error"
    assert found[0]["location"].endswith(f"{name}:{init_line}"), found[0]
    assert found[0]["module"] == "", found[0]          # the model's own class
    assert cls in found[0]["title"]


def test_super_init_failure_names_the_model_or_the_attribute_being_built():
    from torch import nn

    from probes.construction import super_init_failure as _construction_super_init

    class Early(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
            super().__init__()

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Early()

    def failure(build):
        try:
            build()
        except AttributeError as exc:
            return _construction_super_init(exc, factory=build)
        raise AssertionError("built without failing")

    root, nested = failure(Early), failure(Outer)
    assert (root.code, root.module, root.evidence["class"]) == ("missing-super-init", "", "Early")
    # a layer inside: named by the attribute its parent was assigning it to (self.inner = Early())
    assert (nested.module, nested.evidence["class"]) == ("inner", "Early")
    assert root.evidence["failed_at"].endswith(f":{Early.__init__.__code__.co_firstlineno + 1}")


def test_construction_sites_name_the_users_line_and_restore_the_class():
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from probes.findings import location
    from probes.construction import construction_sites as _construction_sites

    def make_optimizer(params):
        return torch.optim.AdamW(params, lr=1e-3)        # a subclass: its __init__ calls Optimizer's

    class Loader(DataLoader):                            # inherits DataLoader.__init__
        pass

    class Numbers(DataLoader):                           # a user subclass with its own __init__
        def __init__(self, n):
            super().__init__(list(range(n)), batch_size=2)

    original = torch.optim.Optimizer.__init__
    params = [nn.Parameter(torch.zeros(2))]
    with _construction_sites(torch.optim.Optimizer) as built:
        opt = make_optimizer(params)
    assert built == {id(opt): location(__file__, make_optimizer.__code__.co_firstlineno + 1)}
    assert torch.optim.Optimizer.__init__ is original
    torch.optim.SGD(params, lr=0.1)                      # nothing recorded once the block is left
    assert len(built) == 1
    with _construction_sites(Loader) as built:
        loader = Loader([1, 2, 3])
    assert list(built) == [id(loader)] and "__init__" not in vars(Loader)

    def make_loader():
        return Numbers(4)                                # the line named, not the super().__init__ inside

    with _construction_sites(DataLoader) as built:
        loader = make_loader()
    assert built == {id(loader): location(__file__, make_loader.__code__.co_firstlineno + 1)}


# -- 3. JSON shape, exit codes, and 6. report ------------------------------------------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """A clean model, then a model with a plain list of layers, checked into one folder of runs: the first by the
    real command line (JSON end to end), the second by the worker's code in a forked child."""
    runs = tmp_path_factory.mktemp("runs")
    clean = probes("check", model("clean.py"), "--steps", "3", "--run-dir", runs, "--json")
    time.sleep(0.05)     # the second run.db is written later, so it is the newest
    plain = checked(model("plain_list.py"), runs, steps=3)
    return runs, clean, plain


def test_json_clean_model(two_runs):
    _, clean, _ = two_runs
    assert clean.code == 0, clean
    result = clean.json()
    assert_public_shape(result)
    assert result["error"] is None
    assert result["model"] == "Clean"
    assert result["device"] == "cpu"
    assert result["steps"] == 3
    assert not [f for f in result["findings"] if f["severity"] == "error"]
    assert (Path(result["run_dir"]) / "run.db").is_file()


def test_json_plain_list_of_layers(two_runs):
    _, _, plain = two_runs
    assert plain.code == 1, plain
    result = plain.json()
    assert_public_shape(result)
    assert result["error"] is None and result["steps"] == 3
    found = [f for f in result["findings"] if f["code"] == "unregistered-module"]
    assert len(found) == 1, result["findings"]
    assert found[0]["severity"] == "error"
    assert found[0]["location"].endswith(f"plain_list.py:{line_of('plain_list.py', 'self.layers = [')}")
    assert found[0]["evidence"]["count"] == 2


@pytest.mark.parametrize("which", [1, 2])
def test_report_agrees_with_check(two_runs, which):
    check = two_runs[which]
    result = check.json()
    run = (probes if which == 1 else in_process)("report", result["run_dir"], "--json")
    assert run.code == check.code, run
    report = run.json()
    assert_public_shape(report)
    assert report["steps"] == result["steps"] == 3
    assert report["model"] == result["model"]
    assert report["run_dir"] == result["run_dir"]
    assert sorted(f["code"] for f in report["findings"]) == sorted(f["code"] for f in result["findings"])


def test_report_folder_picks_the_newest_run(two_runs):
    runs, _, plain = two_runs
    run = in_process("report", runs, "--json")
    assert run.code == 1, run
    report = run.json()
    assert report["run_dir"] == plain.json()["run_dir"]
    assert report["model"] == "PlainList"
    text = probes("report", runs)            # the same in text form
    assert text.code == 1 and "unregistered-module" in text.stdout and "PlainList" in text.stdout, text


def test_report_on_a_missing_directory(tmp_path):
    missing = tmp_path / "no-runs-here"
    assert_short_failure(in_process("report", missing), str(missing))


def test_report_on_a_corrupt_run_log(tmp_path):
    db = tmp_path / "broken-run" / "run.db"
    db.parent.mkdir()
    db.write_bytes(b"this is not an SQLite database \x00\xff\xfe" * 64)
    for target in (db.parent, tmp_path):            # the run itself, and a folder holding it
        assert_short_failure(in_process("report", target), str(db))
    run = in_process("report", db.parent, "--json")
    assert run.code == 2
    result = run.json()
    assert_public_shape(result)
    assert str(db) in result["error"]


# -- 4. model selection ------------------------------------------------------------------------------
def test_several_models_need_a_choice(tmp_path):
    runs = tmp_path / "runs"
    run = checked(model("two_models.py"), runs, steps=2, as_json=False)
    assert_short_failure(run, "two_models.py", "Small", "Big", "--model")

    picked = checked(model("two_models.py"), runs, steps=2, model_name="Big")
    assert picked.code == 0, picked
    assert picked.json()["model"] == "Big" and picked.json()["steps"] == 2

    unknown = checked(model("two_models.py"), runs, steps=2, model_name="Huge", as_json=False)
    assert_short_failure(unknown, "--model Huge", "Small", "Big")


def test_build_model_is_preferred(tmp_path):
    run = checked(model("build_model_preferred.py"), tmp_path, steps=2)
    assert run.code == 0, run
    result = run.json()
    assert result["model"] == "Big"
    _, _, _, tree = read_run(result["run_dir"])
    shapes = {t["name"]: t["shape"] for t in tree["tensors"]}
    assert shapes["fc1.weight"] == [8, 8]          # Big(width=8) from build_model(), not Big()


# -- 5. the model file's own hooks ----------------------------------------------------------------
def test_make_batch_loss_fn_make_optimizer(tmp_path):
    run = checked(model("hook_make_batch.py"), tmp_path, steps=3, batch_size=4)
    assert run.code == 0, run
    result = run.json()
    assert result["error"] is None and result["steps"] == 3
    meta, scalars, steps, _ = read_run(result["run_dir"])
    assert steps == 3
    assert meta["optimizers"][0]["class"] == "SGD"
    assert meta["optimizers"][0]["param_groups"][0]["lr"] == 0.01
    assert (scalars["loss"] >= 1000).all(), scalars["loss"]        # loss_fn's loss, not the default


def test_make_loader(tmp_path):
    # 12 samples in batches of 4: 5 steps need a second epoch
    run = checked(model("hook_make_loader.py"), tmp_path, steps=5)
    assert run.code == 0, run
    result = run.json()
    assert result["error"] is None and result["steps"] == 5
    meta, scalars, steps, _ = read_run(result["run_dir"])
    assert steps == 5
    assert "data_wait_s" in scalars.columns
    assert scalars["data_wait_s"].notna().all() and (scalars["data_wait_s"] >= 0).all()
    assert meta["loader"]["class"] == "DataLoader" and meta["loader"]["batch_size"] == 4
    assert scalars["loss"].notna().all()


def test_train_step_and_eval_step(tmp_path, monkeypatch):
    marker = tmp_path / "eval-step-ran.txt"
    monkeypatch.setenv("FORGESCOPE_TEST_MARKER", str(marker))
    run = checked(model("hook_train_eval_step.py"), tmp_path / "runs", steps=3)
    assert run.code == 0, run
    result = run.json()
    assert result["error"] is None and result["steps"] == 3
    _, scalars, steps, _ = read_run(result["run_dir"])
    assert steps == 3
    assert scalars["loss"].notna().any(), scalars
    assert marker.is_file(), "eval_step was not called"
    assert marker.read_text().startswith("eval_step") and "batch=(8, 3)" in marker.read_text()


@pytest.mark.parametrize("name, cls", [
    ("dict_inputs.py", "TwoTower"),         # make_batch gives a dict: model(**inputs)
    ("tuple_inputs.py", "Pair"),            # make_batch gives a tuple: model(*inputs)
    ("lazy_model.py", "Lazy"),              # LazyLinear materialised before the optimizer
    ("embedding_model.py", "TinyLM"),       # inferred integer tokens
    ("conv_model.py", "SmallCNN"),          # inferred (B, 3, 32, 32) images
])
def test_inputs_of_every_kind(name, cls, tmp_path):
    run = checked(model(name), tmp_path, steps=2)
    assert run.code == 0, run
    result = run.json()
    assert result["error"] is None, result["error"]
    assert result["model"] == cls and result["steps"] == 2
    _, scalars, steps, tree = read_run(result["run_dir"])
    assert steps == 2
    losses = scalars["loss"].tolist()
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses), losses
    if cls == "Lazy":
        shapes = {t["name"]: t["shape"] for t in tree["tensors"]}
        assert shapes["body.weight"] == [16, 10]


# -- 7. bad arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize("args, says", [
    (["--steps", "0", "m.py"], "--steps: must be at least 1"),
    (["--steps", "abc", "m.py"], "--steps: expected a whole number, got 'abc'"),
    (["--device", "tpu", "m.py"], "--device: invalid choice: 'tpu'"),
    ([], "the following arguments are required: MODEL_FILE"),
])
def test_bad_arguments(args, says):
    run = (probes if not args else in_process)("check", *args)   # one through the real command line
    assert run.code == 2, run
    assert says in run.stderr, run
    assert "usage:" in run.stderr and run.stdout == ""
    assert "Traceback" not in run.output


@pytest.mark.parametrize("args, says", [
    (["checkpoint", "m.py"], "the following arguments are required: CHECKPOINT"),
    (["checkpoint", "m.py", "c.pt", "--timeout", "-1"], "--timeout: must be more than 0 seconds, got -1"),
    (["report"], "the following arguments are required: RUN_DIR"),
    (["frobnicate"], "invalid choice: 'frobnicate' (choose from "),
    ([], "the following arguments are required: {check,report,checkpoint,codes}"),
])
def test_bad_arguments_of_every_command(args, says):
    run = in_process(*args)
    assert run.code == 2, run
    assert says in run.stderr, run
    assert "usage: python -m probes" in run.stderr and run.stdout == "" and "Traceback" not in run.output


# -- --diff and --fix (probes/patches, probes/fixing.py) -----------------------------------------------
def test_diff_prints_the_patch_and_writes_nothing(tmp_path):
    copy = tmp_path / "unregistered_module.py"
    shutil.copy(REPO / "sample_models/unregistered_module.py", copy)
    before = copy.read_bytes()
    run = probes("check", copy, "--steps", "3", "--run-dir", tmp_path / "runs", "--diff")
    assert run.code == 1, run
    assert "patch: ready (--diff shows it, check --fix applies it)" in run.stdout
    assert "-        self.hidden = [nn.Linear(width, width) for _ in range(depth)]" in run.stdout
    assert "+        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])" in run.stdout
    assert copy.read_bytes() == before and not (tmp_path / "unregistered_module.py.bak").exists()
    as_json = probes("check", copy, "--steps", "3", "--run-dir", tmp_path / "runs", "--json").json()
    assert_public_shape(as_json)
    [finding] = as_json["findings"]
    assert finding["patch"].startswith(f"--- {copy}\n+++ {copy}\n@@ ")


def test_fix_applies_the_patches_keeps_a_backup_and_checks_again(tmp_path):
    copy = tmp_path / "unregistered_parameter.py"         # two findings, two patches, one after the other
    shutil.copy(REPO / "sample_models/unregistered_parameter.py", copy)
    before = copy.read_bytes()
    run = probes("check", copy, "--steps", "3", "--run-dir", tmp_path / "runs", "--fix")
    assert run.code == 0, run
    assert "2 fix(es) kept" in run.stdout and "No problems found." in run.stdout, run
    assert (tmp_path / "unregistered_parameter.py.bak").read_bytes() == before
    text = copy.read_text()
    assert "self.scale = nn.Parameter(torch.ones(64))" in text
    assert "self.biases = nn.ParameterList([nn.Parameter(torch.zeros(classes)) for _ in range(heads)])" in text


ROLLBACK = """import torch
from torch import nn
from torch.nn import functional as F

monitored = []
total = 0


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


def make_batch(batch_size: int):
    return torch.randn(batch_size, 32), torch.randint(0, 10, (batch_size,))


def train_step(model, batch, optimizer, loss_fn):
    global total
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    monitored.append(model(x))
    total += loss
    return loss
"""


def test_a_fix_that_leaves_the_finding_is_rolled_back(tmp_path):
    """Two things keep a graph every step; the finding names the loss's line, and the patch detaches the
    running total made from it. The monitoring list still keeps the outputs' graphs, so the re-check still
    reports memory-growth: the file is put back as it was, and the command says why."""
    path = tmp_path / "kept_twice.py"
    path.write_text(ROLLBACK)
    before = path.read_bytes()
    run = probes("check", path, "--steps", "8", "--run-dir", tmp_path / "runs", "--fix")
    assert "+    total += loss.detach()" in run.stdout, run
    assert "rolled back: memory-growth is still reported" in run.stdout, run
    assert path.read_bytes() == before and (tmp_path / "kept_twice.py.bak").read_bytes() == before
    assert run.code == 0, run          # a warning, as before the fix
