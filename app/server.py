"""How the dashboard's server is started and what it may do, wherever it is started.

It imports and runs any .py file it is pointed at, so it listens on 127.0.0.1 only unless asked otherwise.
The settings hold for every way of starting it:

* `forgescope ui` passes every setting of SAFE_OPTIONS as a command-line flag (flags win over any
  config.toml: the user's global one, or one in the folder the server starts in);
* `streamlit run <clone>/app/main.py`, from any folder, reads `app/.streamlit/config.toml` (Streamlit
  reads the config beside the main script last, so it wins over the others; the same settings, checked
  by a test);
* and at run time the page itself checks where the server listens: beyond loopback, running model files
  needs an explicit opt-in (`--allow-remote-run`, or FORGESCOPE_ALLOW_REMOTE_RUN=1), and the page says so.

No streamlit import here at module level: the command line builds its flags from this module without
loading the dashboard.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import sys

LOOPBACK = "127.0.0.1"
LOCAL_HOSTS = ("localhost", "127.0.0.1")
ALLOW_REMOTE_RUN_ENV = "FORGESCOPE_ALLOW_REMOTE_RUN"
ALLOW_REMOTE_RUN_FLAG = "--allow-remote-run"

# the safe settings; app/.streamlit/config.toml holds the same (tests/test_security.py compares them)
SAFE_OPTIONS: dict[str, object] = {
    "server.address": LOOPBACK,             # local only
    "server.allowedHosts": list(LOCAL_HOSTS),   # the websocket refuses a foreign Host (DNS rebinding)
    "server.enableCORS": True,              # and a foreign Origin
    "server.enableXsrfProtection": True,
    "server.maxUploadSize": 1,              # MB: the app takes file paths, never uploaded code
    "server.enableStaticServing": False,
    "server.enableAgentApi": False,         # no HTTP API driving the app
    "server.showEmailPrompt": False,
    "server.runOnSave": False,
    "browser.gatherUsageStats": False,      # no usage statistics
    "browser.serverAddress": LOOPBACK,
    "client.toolbarMode": "viewer",         # no deploy button or promotional menu entries
    "client.showErrorDetails": "full",
    "runner.fastReruns": True,
}


def _flag_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def streamlit_flags(host: str = LOOPBACK, port: int | None = None, allowed_hosts: list[str] | None = None,
                    headless: bool = False) -> list[str]:
    """`streamlit run` flags for SAFE_OPTIONS, listening on `host`. A host beyond loopback adds itself, this
    machine's names and `allowed_hosts` to the websocket's allowed Host names."""
    options = dict(SAFE_OPTIONS)
    options["server.address"] = host
    hosts = list(LOCAL_HOSTS)
    if not is_loopback(host):
        names = [] if host in ("0.0.0.0", "::", "") else [host]
        try:
            names += [socket.gethostname(), socket.getfqdn()]
        except OSError:
            pass
        hosts += names
        options["browser.serverAddress"] = "localhost" if host in ("0.0.0.0", "::", "") else host
    hosts += list(allowed_hosts or [])
    options["server.allowedHosts"] = list(dict.fromkeys(h for h in hosts if h))
    options["server.headless"] = headless
    # `forgescope ui` prints the address itself; Streamlit's own banner also advertises its agent skills
    options["logger.hideWelcomeMessage"] = True
    if port is not None:
        options["server.port"] = port
    known = _known_options()
    flags: list[str] = []
    for key, value in options.items():
        if known is not None and key not in known:
            continue            # an option this Streamlit does not have (the agent API before 1.67): nothing to turn off

        for item in value if isinstance(value, list) else [value]:
            flags += [f"--{key}", _flag_value(item)]
    return flags


def _known_options() -> set[str] | None:
    """The config options of the installed Streamlit (a flag it does not know would stop it from starting)."""
    try:
        from streamlit import config
        return set(config._config_options_template)
    except Exception:           # noqa: BLE001 - then pass them all, as on the Streamlit this was written for
        return None


def is_loopback(address: str | None) -> bool:
    """Whether a listening address is reachable from this machine only ("" and 0.0.0.0 are every interface)."""
    if address in (None, "", "0.0.0.0", "::"):
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(address)).is_loopback
        except (OSError, ValueError):
            return False


def remote_run_allowed(argv: list[str] | None = None) -> bool:
    """The explicit opt-in to running model files from a dashboard that listens beyond this machine."""
    argv = sys.argv if argv is None else argv
    return os.environ.get(ALLOW_REMOTE_RUN_ENV) == "1" or ALLOW_REMOTE_RUN_FLAG in argv


def listening_address() -> str:
    """Where the running Streamlit server listens (call from inside the dashboard)."""
    from streamlit import config
    return str(config.get_option("server.address") or "")


def runs_blocked() -> str | None:
    """Why this dashboard may not run model files, or None: it listens beyond loopback, and nobody opted in."""
    address = listening_address()
    if is_loopback(address) or remote_run_allowed():
        return None
    where = address or "every interface"
    return (f"This dashboard listens on {where}, beyond this machine, so it does not run model files: anyone who "
            f"can reach it could make it run any .py file. Run logs are shown as usual. To run model files here "
            f"anyway, restart it with {ALLOW_REMOTE_RUN_FLAG} (forgescope ui --host {where} {ALLOW_REMOTE_RUN_FLAG}) "
            f"or set {ALLOW_REMOTE_RUN_ENV}=1.")


# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and Streamlit runs every
# session's script in a thread of its own: what a refresh frees stays in those arenas, and a server following
# a 1,000,000-step run held ~100 MiB more than it used (benchmarks/live.py: peak 358 MiB). Capping the arenas
# (MALLOC_ARENA_MAX, set by `forgescope ui`; mallopt for a server started otherwise, once its first threads
# exist) and handing freed memory back after each refresh of a run (malloc_trim) keep it to what is used.
MALLOC_ARENAS = "2"
_M_ARENA_MAX = -8           # glibc's malloc.h
_TRIM_EVERY_S = 1.0
_libc = None
_trimmed = 0.0


def _glibc():
    global _libc
    if _libc is None:
        import ctypes
        import ctypes.util
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else False
        except OSError:
            _libc = False
    return _libc


def cap_malloc_arenas() -> bool:
    """At most MALLOC_ARENAS malloc arenas from now on, unless MALLOC_ARENA_MAX set them; False where there is
    no glibc (macOS, musl): nothing changes there."""
    libc = _glibc()
    if not libc or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, int(MALLOC_ARENAS)))


def trim_memory() -> bool:
    """Hand the memory malloc holds free back to the system, at most every _TRIM_EVERY_S (a few ms)."""
    global _trimmed
    import time
    libc = _glibc()
    if not libc or time.monotonic() - _trimmed < _TRIM_EVERY_S:
        return False
    _trimmed = time.monotonic()
    return bool(libc.malloc_trim(0))
