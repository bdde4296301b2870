"""The check worker: a separate process that imports the user's model file and trains it a few steps.

    python -m probes.worker CONFIG.json

The user's code runs here and only here: CONFIG.json is a CheckConfig (probes/contract.py), the check runs
stage by stage (probes/check.py), and whatever the user's code does (raise, sys.exit, hang, abort), a
CheckResult is written to the config's result file, or the parent (probes/jobs.py) reports the crash.
"""
from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import time
from pathlib import Path

from .check import Check
from .checkpoint_check import CheckpointCheck
from .contract import CheckConfig, CheckResult, ContractError


def main(argv: list[str]) -> int:
    try:
        config = CheckConfig.from_json(Path(argv[1]).read_text())
        if not (config.result_file and config.fault_file):
            raise ContractError("the check config names no result_file and fault_file to write")
    except (OSError, ContractError) as e:
        return _refuse(argv[1], e)
    # a native crash (os.abort, segfault) or a hang still leaves the user's line behind for the parent
    crash = open(config.fault_file, "w")
    faulthandler.enable(file=crash)
    if hasattr(signal, "SIGUSR1"):      # the parent asks for a stack dump before it stops a hung check
        faulthandler.register(signal.SIGUSR1, file=crash, all_threads=False)
    # the parent's deadline counts from before this process started (importing torch takes seconds)
    left = config.deadline - time.time() if config.deadline else config.timeout
    faulthandler.dump_traceback_later(max(left - min(2.0, config.timeout / 5), 0.1), file=crash)
    _trace_os_exit(crash)
    # the user's prints must not mix with our output: the parent reads only the result file
    result = (CheckpointCheck if config.checkpoint else Check)(config).run()
    tmp = Path(config.result_file + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, config.result_file)
    faulthandler.cancel_dump_traceback_later()
    return 0


def _refuse(config_file: str, problem: Exception) -> int:
    """A config this worker cannot read (a bug of its caller, never of the user's file): said on stderr, and
    as the result's error when the config names a result file (the parent shows that)."""
    message = f"ForgeScope's check worker cannot run this check: {problem}"
    print(message, file=sys.stderr)
    try:
        result_file = json.loads(Path(config_file).read_text()).get("result_file")
        if isinstance(result_file, str):
            Path(result_file).write_text(json.dumps(CheckResult(error=message).to_dict()))
    except (OSError, ValueError, AttributeError):
        pass
    return 2


def _trace_os_exit(crash) -> None:
    """os._exit() skips every handler: leave a note and the stack first, so the parent can name the line."""
    real_exit, pid = os._exit, os.getpid()

    def _exit(code):
        if os.getpid() == pid:          # not in forked children (DataLoader workers exit this way)
            try:
                crash.write(f"ForgeScope: os._exit({code!r}) called\n")
                crash.flush()
                faulthandler.dump_traceback(file=crash, all_threads=False)
            except Exception:           # noqa: BLE001 - never stand in the way of the exit
                pass
        real_exit(code)

    os._exit = _exit


if __name__ == "__main__":
    sys.exit(main(sys.argv))
