"""The dashboard as a user starts it (`streamlit run app/main.py`) on a free port, for tests that need a
running server: the browser tests, the load test, the security tests."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(run_root: Path, log: Path, timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """(the server process, its URL), once it answers its health check. Stop it with stop()."""
    port = free_port()
    env = {**os.environ, "FORGESCOPE_RUN_DIR": str(run_root)}
    return launch([sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
                   "--server.headless", "true"], port, log, cwd=ROOT, env=env, timeout=timeout)


def launch(argv: list[str], port: int, log: Path, cwd: Path, env: dict, timeout: float = 60
           ) -> tuple[subprocess.Popen, str]:
    """Start a dashboard with this command line (serving on `port`); returns once it answers its health check."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"the dashboard exited:\n{log.read_text()}")
        if time.monotonic() > deadline:
            stop(proc)
            raise AssertionError(f"the dashboard did not start within {timeout:g} s")
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    """Stop the server (and, for `forgescope ui`, the Streamlit process it started: the whole session)."""
    try:
        os.killpg(proc.pid, 15)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")
