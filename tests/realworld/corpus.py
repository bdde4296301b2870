"""The real-world corpus: correct third-party models and loops, and reproductions of real bug reports.

    python -m tests.realworld.corpus [NAME ...] [--json FILE]

Each case is one file under correct/ or bugs/, rewritten in our own words from code we did not write; its
docstring names the source and ends with a `Finds:` line in the format of sample_models/ (see
tests/test_samples.py): `Finds: nothing` for a correct case (no error or warning may be reported), or the
`code @ module` entries a bug reproduction must report. A bug the detectors do not find yet says so in a
`Known miss: why` line: it is still run and counted as missed, and tests/test_realworld.py expects it to fail.

A case is either
* a model file, checked exactly as `python -m probes check FILE` checks it (the worker's Check, default
  20 steps, batch 8, on the CPU), or
* a training loop: a file defining `train(run_dir)` that runs its own loop with a Probe writing under
  run_dir; the run is then read back as `python -m probes report` reads it.

Every case runs in a child forked from one parent that has imported torch (and transformers) once, so a
case cannot leak global state (default dtype, grad mode, hooks) into the next and the corpus runs in a few
minutes; cases run side by side, one per core (--jobs). A case that crashes or hangs is reported as
such, never taken for a pass.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KINDS = ("correct", "bugs")
CASE_TIMEOUT_S = 180.0
ENTRY = re.compile(r"(?P<code>[a-z][a-z-]*)(?: @ (?P<module>\(the model\)|[\w.]+))?")


@dataclass
class Case:
    path: Path
    kind: str                                   # "correct" or "bugs"
    expected: list[tuple[str, str | None]]      # (code, module); module None = any / no module
    source: str
    known_miss: str | None = None               # a bug the detectors do not find yet, and why (`Known miss:`)

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.path.stem}"


@dataclass
class Outcome:
    case: Case
    findings: list[dict] = field(default_factory=list)   # errors and warnings reported (and, for a bug
                                                         # case, info findings of the code it expects)
    error: str | None = None                   # the check (or the loop) failed
    crashed: str | None = None                 # the child died or hung
    seconds: float = 0.0
    steps: int = 0                             # training steps recorded

    @property
    def verdict(self) -> str:
        if self.crashed:
            return "crashed"
        reported = {(f["code"], f["module"]) for f in self.findings}
        if self.case.kind == "correct":
            if self.findings:
                return "false alarm"
            return "check failed" if self.error else "clean"
        codes = {c for c, _ in reported}
        if all(_matched(code, module, reported) for code, module in self.case.expected):
            return "found"
        if all(code in codes for code, _ in self.case.expected):
            return "wrong module"
        return "missed"

    @property
    def ok(self) -> bool:
        return self.verdict in ("clean", "found")


def _matched(code: str, module: str | None, reported: set) -> bool:
    return any(c == code and (module is None or m == module) for c, m in reported)


def read_case(path: Path, kind: str) -> Case:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    lines = doc.splitlines()
    finds = [ln.removeprefix("Finds:").strip() for ln in lines if ln.startswith("Finds:")]
    if not finds:
        raise ValueError(f"{path}: the docstring needs a 'Finds: ...' line")
    sources = [ln.removeprefix("Source:").strip() for ln in lines if ln.startswith("Source:")]
    if not sources:
        raise ValueError(f"{path}: the docstring needs a 'Source: ...' line naming where the code comes from")
    expected = []
    if finds[-1] != "nothing":
        for text in finds[-1].split(","):
            m = ENTRY.fullmatch(text.strip())
            if not m:
                raise ValueError(f"{path}: cannot read the Finds entry {text.strip()!r}")
            module = m["module"]
            expected.append((m["code"], "" if module == "(the model)" else module))
    if (kind == "correct") != (not expected):
        raise ValueError(f"{path}: a case under {kind}/ must say "
                         + ("'Finds: nothing'" if kind == "correct" else "the code it must report"))
    misses = [ln.removeprefix("Known miss:").strip() for ln in lines if ln.startswith("Known miss:")]
    return Case(path=path, kind=kind, expected=expected, source=sources[0], known_miss=misses[0] if misses else None)


def cases(names: list[str] | None = None) -> list[Case]:
    found = []
    for kind in KINDS:
        for path in sorted((HERE / kind).glob("*.py")):
            case = read_case(path, kind)
            if not names or case.name in names or path.stem in names:
                found.append(case)
    return found


# -- running one case (in the forked child) ---------------------------------------------------------------
def _run_case(case: Case, run_dir: str) -> dict:
    import torch
    torch.manual_seed(0)
    source = case.path.read_text()
    if re.search(r"^def train\(", source, re.MULTILINE):
        from probes.modelfile import load_module
        from probes.report import report_run
        module = load_module(case.path)
        error = None
        try:
            module.train(run_dir)
        except Exception as e:      # noqa: BLE001 - a loop that dies is reported, with what was recorded
            error = f"{type(e).__name__}: {e}"
        result = report_run(run_dir)
        result["error"] = error or result.get("error")
        return result
    from probes.contract import CheckConfig
    from probes.worker import Check
    # the command line's defaults (steps, batch size), on the CPU
    return Check(CheckConfig(str(case.path), device="cpu", run_dir=run_dir)).run()


def _child(case: Case, out: str, run_dir: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch
        torch.set_num_threads(1)
        result = _run_case(case, run_dir)
    except BaseException:       # noqa: BLE001 - anything the harness itself meets
        result = {"error": "harness: " + traceback.format_exc(limit=6), "findings": []}
    Path(out).write_text(json.dumps(result, default=str))
    sys.stdout.flush()
    os._exit(0)


@dataclass
class _Child:
    """A case running in a forked child: where it writes its result, and when it is given up on."""
    case: Case
    pid: int
    tmp: str
    started: float
    deadline: float

    @property
    def out(self) -> str:
        return os.path.join(self.tmp, "result.json")


def _start(case: Case, timeout: float) -> _Child:
    tmp = tempfile.mkdtemp(prefix="forgescope-corpus-")
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            with open(os.devnull, "w") as null:       # the case's prints stay out of our output
                os.dup2(null.fileno(), 1)
                os.dup2(null.fileno(), 2)
            _child(case, os.path.join(tmp, "result.json"), os.path.join(tmp, "runs"))
        finally:
            os._exit(3)
    return _Child(case, pid, tmp, started, time.monotonic() + timeout)


def _outcome(child: _Child, status: int | None, timed_out: bool = False) -> Outcome:
    case, seconds = child.case, time.perf_counter() - child.started
    try:
        if timed_out:
            return Outcome(case, crashed=f"still running after {CASE_TIMEOUT_S:g} s", seconds=seconds)
        if not os.path.exists(child.out):
            return Outcome(case, crashed=f"the child died (wait status {status})", seconds=seconds)
        result = json.loads(Path(child.out).read_text())
    finally:
        shutil.rmtree(child.tmp, ignore_errors=True)
    # a correct case may carry info findings; a bug whose code is an info finding must still be named
    findings = [f for f in result.get("findings", [])
                if f.get("severity") != "info" or (case.kind == "bugs" and f.get("code") in
                                                   {code for code, _ in case.expected})]
    return Outcome(case, findings=findings, error=result.get("error"), seconds=seconds,
                   steps=int(result.get("steps") or 0))


def run_children(selected: list[Case], jobs: int = 1, timeout: float = CASE_TIMEOUT_S, progress=None
                 ) -> list[Outcome]:
    """Every case in a child of its own, `jobs` at a time; outcomes in the order of `selected`."""
    pending, running, done = list(selected), {}, {}
    while pending or running:
        while pending and len(running) < max(1, jobs):
            child = _start(pending.pop(0), timeout)
            running[child.pid] = child
        for pid, child in list(running.items()):
            finished, status = os.waitpid(pid, os.WNOHANG)
            timed_out = not finished and time.monotonic() > child.deadline
            if timed_out:
                os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if finished or timed_out:
                del running[pid]
                outcome = done[child.case.name] = _outcome(child, status if finished else None, timed_out)
                if progress:
                    progress(outcome)
        time.sleep(0.02)
    return [done[case.name] for case in selected]


def run(case: Case, timeout: float = CASE_TIMEOUT_S) -> Outcome:
    return run_children([case], 1, timeout)[0]


def default_jobs() -> int:
    """One case per core the process may use (each child trains on one thread), at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def _prepare() -> None:
    """Import once in the parent what every child needs, so each fork starts warm."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(ROOT))
    import torch  # noqa: F401
    import probes.worker  # noqa: F401
    import probes.report  # noqa: F401
    try:
        import transformers  # noqa: F401
        # transformers loads lazily: its model base (which pulls in torch.distributed.tensor, dynamo, sympy)
        # took 3 of a Hugging Face case's 4.8 s when each child loaded it for itself
        import transformers.modeling_utils  # noqa: F401
    except ImportError:
        pass


def run_all(selected: list[Case], progress=None, jobs: int | None = None) -> list[Outcome]:
    _prepare()
    return run_children(selected, jobs or default_jobs(), progress=progress)


def matrix(outcomes: list[Outcome]) -> str:
    correct = [o for o in outcomes if o.case.kind == "correct"]
    bugs = [o for o in outcomes if o.case.kind == "bugs"]

    def count(group, verdict):
        return sum(o.verdict == verdict for o in group)

    lines = [f"correct cases: {len(correct)}   clean {count(correct, 'clean')}   false alarm "
             f"{count(correct, 'false alarm')}   check failed {count(correct, 'check failed')}   crashed "
             f"{count(correct, 'crashed')}",
             f"bug cases:     {len(bugs)}   found {count(bugs, 'found')}   wrong module "
             f"{count(bugs, 'wrong module')}   missed {count(bugs, 'missed')}   crashed {count(bugs, 'crashed')}"]
    if bugs:
        lines.append(f"bugs found with the right code and module: {count(bugs, 'found') / len(bugs):.0%}")
    return "\n".join(lines)


# -- patches: each mechanical fix applied to a copy of the case, and the copy run again ------------------
@dataclass
class PatchOutcome:
    case: str
    codes: list[str]                 # the mechanical codes the case expects
    patched: list[str]               # the codes a patch was offered for
    verdict: str                     # "right", "wrong" (the code is still reported, or the copy fails or reports
                                     # something new), or "no patch"
    said: str = ""                   # for a wrong one, what the patched copy reported


def patch_outcomes(outcomes: list[Outcome], jobs: int = 1) -> list[PatchOutcome]:
    """For every bug case that expects a code with a mechanical fix (probes.patches.codes()): its findings'
    patches applied one after the other to a copy of the file (each made against the copy as the last one
    left it, as `check --fix` does), then the copy run again. Right when the patched copy runs, no longer
    reports a patched code, and reports nothing the original did not."""
    from probes.patches import apply_in_turn, codes
    mechanical = set(codes())
    results, copies = {}, []
    work = Path(tempfile.mkdtemp(prefix="forgescope-patches-"))
    try:
        for o in outcomes:
            wanted = sorted({c for c, _ in o.case.expected if c in mechanical})
            if o.case.kind != "bugs" or not wanted:
                continue
            copy = work / o.case.path.parent.name / o.case.path.name
            copy.parent.mkdir(exist_ok=True)
            shutil.copy2(o.case.path, copy)
            shown = os.path.relpath(o.case.path)      # as the case's findings name it
            moved = [{**f, "location": str(copy) + f["location"][len(shown):]} for f in o.findings
                     if f["code"] in wanted and (f.get("location") or "").startswith(shown + ":")]
            patched = [f["code"] for f, _ in apply_in_turn(moved, only=copy.resolve())]
            results[o.case.name] = PatchOutcome(o.case.name, wanted, sorted(set(patched)), "no patch")
            if patched:
                copies.append((o, read_case(copy, "bugs")))
        reruns = run_children([c for _, c in copies], jobs) if copies else []
        for (o, _), again in zip(copies, reruns):
            r = results[o.case.name]
            before = {f["code"] for f in o.findings}
            now = {f["code"] for f in again.findings}
            left = sorted(now & set(r.patched))
            # a file that could not be built or trained before is checked in full only now: what else it
            # reports then was hidden, not made by the patch
            new = sorted(now - before) if o.steps and not o.error else []
            ok = not again.crashed and not (again.error and not o.error) and not left and not new
            r.verdict = "right" if ok else "wrong"
            if not ok:
                failed = again.crashed or (again.error.strip().splitlines()[-1][:200] if again.error else "")
                r.said = " ".join(filter(None, [failed, f"still reports {left}" if left else "",
                                                f"newly reports {new}" if new else ""]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return list(results.values())


def patch_matrix(results: list[PatchOutcome]) -> str:
    got = [r for r in results if r.patched]
    right = sum(r.verdict == "right" for r in got)
    return (f"bug cases with a mechanical code: {len(results)}   got a patch {len(got)}   right {right}   "
            f"wrong {len(got) - right}   no patch {len(results) - len(got)}")


def describe(o: Outcome) -> str:
    said = ", ".join(f"{f['code']} @ {f['module']!r}" for f in o.findings) or "nothing"
    want = ", ".join(f"{c} @ {m!r}" for c, m in o.case.expected) or "nothing"
    text = f"{o.verdict:12s} {o.case.name:45s} {o.seconds:5.1f}s  expected {want}; reported {said}"
    if o.error:
        text += f"\n{'':13s}error: {o.error.strip().splitlines()[-1][:300]}"
    if o.crashed:
        text += f"\n{'':13s}{o.crashed}"
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realworld.corpus", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="cases to run (kind/name or name); all by default")
    parser.add_argument("--json", metavar="FILE", help="also write every outcome as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only cases that are not clean/found")
    parser.add_argument("--jobs", type=int, metavar="N", help="cases run at a time (default: one per core, at most 4)")
    parser.add_argument("--patches", action="store_true",
                        help="also apply each bug case's patches to a copy and run it again (probes.patches)")
    args = parser.parse_args(argv)
    selected = cases(args.names)
    outcomes = run_all(selected, progress=lambda o: (args.quiet and o.ok) or print(describe(o), flush=True),
                       jobs=args.jobs)
    print()
    print(matrix(outcomes))
    patched = patch_outcomes(outcomes, args.jobs or default_jobs()) if args.patches else []
    if args.patches:
        for r in patched:
            if not args.quiet or r.verdict == "wrong":
                print(f"{r.verdict:9s} {r.case:45s} codes {', '.join(r.codes)}; patched {', '.join(r.patched) or '-'}"
                      + (f"; {r.said}" if r.said else ""))
        print(patch_matrix(patched))
    if args.json:
        by_case = {r.case: r for r in patched}
        Path(args.json).write_text(json.dumps([{"case": o.case.name, "verdict": o.verdict, "findings": o.findings,
                                                "error": o.error, "crashed": o.crashed,
                                                **({"patch": vars(by_case[o.case.name])} if o.case.name in by_case
                                                   else {})} for o in outcomes], indent=1))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
