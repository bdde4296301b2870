"""Command line: `python -m probes check MODEL_FILE`, `python -m probes report RUN_DIR` and
`python -m probes checkpoint MODEL_FILE CHECKPOINT`.

Exit codes: 0 no error-level finding; 1 error-level findings; 2 the file could not be loaded or run.
The user's file runs in a worker subprocess (probes.worker), never in this process; probes/jobs.py starts and
supervises it, probes/contract.py defines what it is given (every default) and what it answers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .contract import CHECK_DEFAULTS, DEVICES, PUBLIC_FIELDS, CheckConfig
from .findings import has_errors
from .jobs import run_check

EXIT_OK, EXIT_FINDINGS, EXIT_FAILED = 0, 1, 2


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
    commands = "{ui,check,report,checkpoint,codes}" if with_ui else "{check,report,checkpoint,codes}"
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
    check.add_argument("--steps", type=_positive_int, default=CHECK_DEFAULTS.steps, metavar="N",
                       help=f"training steps (default {CHECK_DEFAULTS.steps})")
    check.add_argument("--batch-size", type=_positive_int, default=CHECK_DEFAULTS.batch_size, metavar="B",
                       help=f"batch size (default {CHECK_DEFAULTS.batch_size})")
    check.add_argument("--device", choices=DEVICES, default=CHECK_DEFAULTS.device,
                       help=f"where to train (default {CHECK_DEFAULTS.device}: cuda, then mps, then cpu)")
    check.add_argument("--model", metavar="NAME", help="the class or function to build when the file has several")
    check.add_argument("--run-dir", default=CHECK_DEFAULTS.run_dir, metavar="DIR",
                       help=f"where run logs go (default {CHECK_DEFAULTS.run_dir})")
    check.add_argument("--timeout", type=_positive_float, default=CHECK_DEFAULTS.timeout, metavar="SECONDS",
                       help=f"stop the check after this long (default {CHECK_DEFAULTS.timeout:g})")
    check.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    check.add_argument("--compile-check", action="store_true",
                       help="also run torch._dynamo.explain on a copy of the model and report each graph "
                            "break (info findings)")
    check.add_argument("--diff", action="store_true",
                       help="print the patch (a unified diff) of each finding whose fix is mechanical")
    check.add_argument("--fix", action="store_true",
                       help="apply those patches to MODEL_FILE (backup: MODEL_FILE.bak) and check again; a fix "
                            "that does not make its finding go away is rolled back")
    report = sub.add_parser("report", help="summarise a recorded run (finished or still running)",
                            description="Summarise a run log: a run directory, or a folder of runs (the newest).")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holding run.db) or a folder of runs")
    report.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    report.add_argument("--diff", action="store_true",
                        help="print the patch of each finding whose fix is mechanical (never applied: the "
                             "script may be running)")
    doctor = sub.add_parser("checkpoint", help="does a checkpoint load into the model? (never runs pickled code)",
                            description="Build the model from MODEL_FILE in a worker process, read CHECKPOINT "
                                        "with torch.load(weights_only=True) and compare it with the model's "
                                        "state_dict(): missing and unexpected keys, shapes, dtypes, a 'module.' "
                                        "prefix, the model's part of a training checkpoint.")
    doctor.add_argument("model_file", metavar="MODEL_FILE", help="a .py file defining the model")
    doctor.add_argument("checkpoint", metavar="CHECKPOINT", help="a file saved with torch.save")
    doctor.add_argument("--model", metavar="NAME", help="the class or function to build when the file has several")
    doctor.add_argument("--timeout", type=_positive_float, default=CHECK_DEFAULTS.timeout, metavar="SECONDS",
                        help=f"stop after this long (default {CHECK_DEFAULTS.timeout:g})")
    doctor.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    codes = sub.add_parser("codes", help="list every finding code: severity, detector, watcher, samples, chart",
                           description="Print the findings catalogue (probes/catalog.py): each code with its "
                                       "severity, title, the module that detects it, its samples and its chart.")
    codes.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m probes", with_ui: bool = False) -> int:
    args = build_parser(prog, with_ui).parse_args(argv)
    if args.command == "ui":
        from app.launch import serve
        return serve(args)
    if args.command == "codes":
        from .catalog import print_codes
        return print_codes(as_json=args.json)
    if args.command == "check":
        config = CheckConfig(args.model_file, steps=args.steps, batch_size=args.batch_size, device=args.device,
                             model=args.model, run_dir=args.run_dir, timeout=args.timeout,
                             compile_check=args.compile_check)
        result = run_check(config)
        if args.fix:
            from .fixing import fix
            return fix(config, result, as_json=args.json, title=f"check {args.model_file}")
    elif args.command == "checkpoint":
        result = run_check(CheckConfig(args.model_file, model=args.model, timeout=args.timeout, device="cpu",
                                       checkpoint=args.checkpoint))
    else:
        from .report import report_run
        result = report_run(args.run_dir)
        from .patches import attach
        attach(result["findings"])          # shown, never applied: the script may still be running
    code = emit(result, as_json=args.json, title=f"{args.command} {getattr(args, 'model_file', None) or args.run_dir}")
    if getattr(args, "diff", False) and not args.json:
        print_patches(result)
    return code


def print_patches(result: dict[str, Any]) -> None:
    patches = [f for f in result.get("findings", []) if f.get("patch")]
    print()
    if not patches:
        print("No patch: none of these findings has a fix ForgeScope can write for certain.")
    for f in patches:
        print(f"# {f['code']} at {f['location']}")
        print(f["patch"], end="")


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


if __name__ == "__main__":
    sys.exit(main())
