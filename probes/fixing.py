"""`python -m probes check MODEL_FILE --fix`: apply each finding's patch to MODEL_FILE, then check again.

The file is copied to MODEL_FILE.bak first. The patches go in one after the other, each made against the
file as the previous one left it (the remaining findings' lines follow the changes). Then the file is
checked again: if a patched finding is still there, the check now fails where it did not, or it reports an
error it did not before, the file is put back as it was and the command says so. Only MODEL_FILE is ever
written; a patch for another file is printed, not applied.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .contract import PUBLIC_FIELDS, CheckConfig
from .jobs import run_check
from .patches import apply_in_turn, backup_path, patch_for


def _key(f: dict) -> tuple:
    return f["code"], f.get("module")


def fix(config: CheckConfig, result: dict[str, Any], as_json: bool, title: str) -> int:
    from .cli import emit, exit_code
    say = (lambda *a: print(*a, file=sys.stderr)) if as_json else print
    if not as_json:
        emit(result, as_json=False, title=title)
    target = Path(config.model_file).resolve()
    pending = [f for f in result.get("findings", []) if f.get("patch")]
    elsewhere = [f for f in pending if (patch_for(f) or _NoPatch).path != target]
    pending = [f for f in pending if f not in elsewhere]
    for f in elsewhere:
        say(f"\nnot applied (only {config.model_file} is written): {f['code']} at {f['location']}")
    if not pending:
        if not elsewhere:
            say("\nNothing to fix: no finding has a patch for this file.")
        return _json(result, {"applied": [], "kept": False}, True) if as_json else exit_code(result)
    original = target.read_bytes()
    backup = backup_path(target)
    backup.write_bytes(original)
    done = apply_in_turn(pending, only=target)
    applied = [f for f, _ in done]
    for f, patch in done:
        if not as_json:
            print(f"\nfixed {f['code']} at {f['location']}:")
            print(patch.diff, end="")
    for f in pending:
        if not any(f is g for g in applied):
            say(f"skipped (the fix before it changed its lines): {f['code']} at {f['location']}")
    say(f"\nchecking {config.model_file} again (the original is kept in {backup.name}) ...")
    again = run_check(config)
    before, after = Counter(_key(f) for f in result["findings"]), Counter(_key(f) for f in again["findings"])
    fixed = Counter(_key(f) for f in applied)
    remaining = [k for k in fixed if after[k] > before[k] - fixed[k]]
    # a file that could not be built or trained before is only now checked in full: its other findings
    # were hidden, not made by the fix
    worse = [f for f in again["findings"] if f["severity"] == "error" and before[_key(f)] == 0
             and result.get("steps") and not result.get("error")]
    failed = again.get("error") and not result.get("error")
    if remaining or worse or failed:
        target.write_bytes(original)
        why = (f"the check now fails: {again['error']}" if failed else
               f"{', '.join(c for c, _ in remaining)} is still reported" if remaining else
               f"it now reports {', '.join(sorted({f['code'] for f in worse}))}")
        say(f"\nrolled back: {why}; {config.model_file} is as it was (also in {backup.name}).")
        if as_json:
            return _json(result, {"applied": [], "kept": False, "rolled_back": why, "backup": str(backup)}, True)
        return exit_code(result)
    if as_json:
        return _json(again, {"applied": [_brief(f) for f in applied], "kept": True, "backup": str(backup)}, True)
    print()
    emit(again, as_json=False, title=title + " (after --fix)")
    print(f"\n{len(applied)} fix(es) kept in {config.model_file}; the original is {backup}.")
    return exit_code(again)


class _NoPatch:
    path = None


def _brief(f: dict) -> dict:
    return {"code": f["code"], "module": f.get("module"), "location": f.get("location")}


def _json(result: dict, fixing: dict, as_json: bool) -> int:
    from .cli import exit_code
    print(json.dumps({**{k: result.get(k) for k in PUBLIC_FIELDS}, "fix": fixing}, indent=2, default=str))
    return exit_code(result)
