"""ForgeScope as people install it: `pip install .` (not editable) into a fresh virtual environment, then the
`forgescope` command from another folder, and `streamlit run <clone>/app/main.py` started there.

The fresh environment gets this project only (`pip install --no-deps .`, a real wheel build); its
dependencies (torch, streamlit, ...) are the test environment's, reached through a .pth file, so nothing is
downloaded twice. The folder the servers start in holds a hostile `.streamlit/config.toml` (listen on every
interface, accept any Host and Origin, send usage statistics), and so does the fresh HOME: the dashboard must
stay local anyway.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

import dashboard_server
from test_security import handshake, listening_addresses

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = "sample_models/unregistered_module.py"
HOSTILE_CONFIG = """\
[server]
address = "0.0.0.0"
allowedHosts = ["*"]
enableCORS = false
enableXsrfProtection = false
[browser]
gatherUsageStats = true
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the fresh environment's python, its forgescope command, a folder outside the clone, its environment)."""
    base = tmp_path_factory.mktemp("install")
    venv = base / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                           "--no-cache-dir", "-q", str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    work = base / "my_project"            # a user's own project folder: their script, their runs/
    (work / ".streamlit").mkdir(parents=True)
    (work / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    home = base / "home"
    (home / ".streamlit").mkdir(parents=True)
    (home / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "FORGESCOPE_", "PYTHONPATH"))}
    env["HOME"] = str(home)
    return python, venv / "bin" / "forgescope", work, env, Path(purelib)


def test_the_install_holds_the_library_the_dashboard_and_the_command(installed):
    python, forgescope, work, env, purelib = installed
    assert forgescope.is_file()
    for part in ("probes/probe.py", "probes/detectors/memory_growth.py", "probes/watchers/memory_growth.py",
                 "probes/catalog.py", "probes/integrations/lightning.py", "app/main.py", "app/views/findings.py",
                 "app/.streamlit/config.toml", "app/server.py"):
        assert (purelib / part).is_file(), part
    # imported from the install, not from the clone
    where = subprocess.run([str(python), "-c", "import app, probes; print(app.__file__); print(probes.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(w).is_relative_to(purelib) for w in where), where
    help_text = subprocess.run([str(forgescope), "--help"], cwd=work, env=env, capture_output=True, text=True).stdout
    assert "{ui,check,report,checkpoint,codes}" in help_text


def assert_local_only(port: int) -> None:
    assert listening_addresses(port) == {"127.0.0.1"}
    assert handshake(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") == "HTTP/1.1 101 Switching Protocols"
    assert handshake(port, f"evil.example:{port}", f"http://evil.example:{port}") == "HTTP/1.1 403 Forbidden"
    assert handshake(port, f"127.0.0.1:{port}", "http://evil.example") == "HTTP/1.1 403 Forbidden"


def test_forgescope_ui_from_another_folder_serves_on_127_0_0_1_only(installed):
    python, forgescope, work, env, _ = installed
    port = dashboard_server.free_port()
    proc, _ = dashboard_server.launch([str(forgescope), "ui", "--logdir", "X", "--port", str(port), "--no-browser"],
                                      port, work / "ui.log", cwd=work, env=env)
    try:
        assert_local_only(port)
        # the Streamlit server it started was told every safe setting on its command line (flags win over files)
        import psutil
        children = psutil.Process(proc.pid).children(recursive=True)
        server = next(c for c in children if "streamlit" in " ".join(c.cmdline()))
        flags = " ".join(server.cmdline())
        for flag in ("--server.address 127.0.0.1", "--browser.gatherUsageStats false", "--server.enableCORS true",
                     "--server.enableXsrfProtection true", "--server.enableAgentApi false"):
            assert flag in flags, flags
        assert server.environ().get("FORGESCOPE_RUN_DIR") == str(work / "X")
        assert server.environ().get("FORGESCOPE_MODEL") == ""       # no model named: none opened, none run
    finally:
        dashboard_server.stop(proc)
    assert "this machine only" in (work / "ui.log").read_text()


def test_streamlit_run_of_the_clone_from_another_folder_serves_on_127_0_0_1_only(installed):
    python, _, work, env, _ = installed
    port = dashboard_server.free_port()
    proc, _ = dashboard_server.launch([str(python), "-m", "streamlit", "run", str(ROOT / "app" / "main.py"),
                                       "--server.port", str(port), "--server.headless", "true"],
                                      port, work / "streamlit.log", cwd=work, env=env)
    try:
        assert_local_only(port)
    finally:
        dashboard_server.stop(proc)


def test_forgescope_check_and_report_match_python_m_probes(installed, tmp_path):
    python, forgescope, work, env, _ = installed
    (work / "unregistered_module.py").write_text((ROOT / SAMPLE).read_text())
    mine = subprocess.run([str(forgescope), "check", "unregistered_module.py", "--json", "--steps", "3",
                           "--run-dir", str(tmp_path / "a")], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    theirs = subprocess.run([sys.executable, "-m", "probes", "check", SAMPLE, "--json", "--steps", "3",
                             "--run-dir", str(tmp_path / "b")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert mine.returncode == theirs.returncode == 1, (mine.stderr, theirs.stderr)
    a, b = json.loads(mine.stdout), json.loads(theirs.stdout)
    assert list(a) == list(b) == ["model", "device", "steps", "run_dir", "error", "findings"]

    def same(result):
        return {**result, "run_dir": None,
                "findings": [{**f, "location": f["location"] and f["location"].rsplit("/", 1)[-1],
                              "patch": f.get("patch") and f["patch"].split("\n", 2)[2]}     # hunks, not names
                             for f in result["findings"]]}
    assert same(a) == same(b) and a["findings"][0]["code"] == "unregistered-module"
    report = subprocess.run([str(forgescope), "report", a["run_dir"], "--json"], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    ours = subprocess.run([sys.executable, "-m", "probes", "report", a["run_dir"], "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    # a finding's location is relative to the folder the run was recorded from: only there is its file found,
    # and with it the patch
    assert "patch" in json.loads(report.stdout)["findings"][0]

    def unpatched(text):
        result = json.loads(text)
        return {**result, "findings": [{k: v for k, v in f.items() if k != "patch"} for f in result["findings"]]}
    assert report.returncode == ours.returncode == 1 and unpatched(report.stdout) == unpatched(ours.stdout)
    # the same exit code 2 and message for a file that is not there
    missing = subprocess.run([str(forgescope), "check", "nope.py"], cwd=work, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.py: no such file" in missing.stderr + missing.stdout


def test_forgescope_ui_refuses_bad_arguments_with_a_message(installed):
    _, forgescope, work, env, _ = installed
    for args, message in ((["nope.py"], "nope.py: no such file"),
                          (["--allow-remote-run"], "--allow-remote-run is for a dashboard shared"),
                          (["--port", "0"], "not a port number")):
        proc = subprocess.run([str(forgescope), "ui", "--no-browser", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
