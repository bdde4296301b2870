"""`forgescope ui`: start the dashboard on a run directory or a model file, with the safe server settings.

The server is Streamlit's own, started as `python -m streamlit run <this folder>/main.py` with every setting
of app.server.SAFE_OPTIONS given as a flag, so no config file anywhere can open it wider; listening beyond
this machine is `--host ADDRESS`, and running model files there also needs `--allow-remote-run`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from app.paths import MODEL_ENV, RUN_DIR_ENV
from app.server import (ALLOW_REMOTE_RUN_ENV, ALLOW_REMOTE_RUN_FLAG, LOOPBACK, MALLOC_ARENAS, is_loopback,
                        streamlit_flags)
from probes.contract import CHECK_DEFAULTS

MAIN = Path(__file__).resolve().with_name("main.py")


def add_arguments(parser) -> None:
    parser.add_argument("model_file", metavar="MODEL_FILE", nargs="?",
                        help="a .py file defining a model: the dashboard opens on it (and checks it if it has no run)")
    parser.add_argument("--logdir", metavar="DIR", default=None,
                        help=f"the run directory to show (default: ${RUN_DIR_ENV}, else ./{CHECK_DEFAULTS.run_dir})")
    parser.add_argument("--port", type=int, default=8501, metavar="N", help="port (default 8501)")
    parser.add_argument("--host", default=LOOPBACK, metavar="ADDRESS",
                        help="listen address (default 127.0.0.1: this machine only). Anything else shares the "
                             "dashboard with whoever can reach it")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="with --host: a host name teammates type in the address bar (repeatable)")
    parser.add_argument(ALLOW_REMOTE_RUN_FLAG, action="store_true",
                        help="with --host beyond loopback: let the dashboard run model files (anyone who can "
                             "reach it could then run any .py file this account can read)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser tab")


def command(args) -> tuple[list[str], dict[str, str]]:
    """The server's command line and environment for parsed `forgescope ui` arguments."""
    env = dict(os.environ)
    logdir = args.logdir or env.get(RUN_DIR_ENV) or CHECK_DEFAULTS.run_dir
    env[RUN_DIR_ENV] = str(Path(logdir).expanduser().resolve())
    env[MODEL_ENV] = args.model_file or ""     # none named: the dashboard shows the runs and runs nothing
    env.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)     # read by glibc as the server starts (app.server)
    argv = [sys.executable, "-m", "streamlit", "run", str(MAIN),
            *streamlit_flags(args.host, args.port, args.allowed_host, headless=args.no_browser)]
    if args.allow_remote_run:
        env[ALLOW_REMOTE_RUN_ENV] = "1"
    return argv, env


def problem(args) -> str | None:
    if args.model_file:
        path = Path(args.model_file)
        if not path.is_file():
            return f"{args.model_file}: no such file"
        if path.suffix != ".py":
            return f"{args.model_file}: not a Python file (expected a .py file)"
    logdir = Path(args.logdir) if args.logdir else None
    if logdir is not None and logdir.exists() and not logdir.is_dir():
        return f"{args.logdir}: not a folder (--logdir takes the folder your runs are written to)"
    if not 0 < args.port < 65536:
        return f"--port {args.port}: not a port number (1-65535)"
    if args.allow_remote_run and is_loopback(args.host):
        return f"{ALLOW_REMOTE_RUN_FLAG} is for a dashboard shared beyond this machine (with --host)"
    return None


def serve(args) -> int:
    why = problem(args)
    if why:
        print(f"forgescope ui: {why}", file=sys.stderr)
        return 2
    argv, env = command(args)
    where = "this machine only" if is_loopback(args.host) else "SHARED beyond this machine"
    print(f"ForgeScope dashboard: http://{'127.0.0.1' if is_loopback(args.host) else args.host}:{args.port} "
          f"({where}); runs from {env[RUN_DIR_ENV]}. Ctrl-C stops it.", file=sys.stderr)
    proc = subprocess.Popen(argv, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
