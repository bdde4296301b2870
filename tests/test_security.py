"""Security of the dashboard: local-only config, what the running server accepts, and escaping of names.

One real `streamlit run app/main.py` serves the whole module (started from the repository root, so it reads
`.streamlit/config.toml`); the pages are driven by a real chromium through Playwright, and the model files
run in real worker subprocesses (`python -m probes check`, or the dashboard's own Run).

What the installed Streamlit (Starlette server) does with the Host header: `server.allowedHosts` is checked
only on the WebSocket (`/_stcore/stream`) and the agent API (`/_stcore/agent/*`, off by default). Plain HTTP
(`/`, `/_stcore/health`, `/_stcore/host-config`, `/_stcore/metrics`, `/media/...`) is served to any Host, so
test_http_to_a_foreign_host_carries_no_run_data checks that nothing served over HTTP without the WebSocket
carries run data.
"""
import ast
import base64
import os
import re
import shutil
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

import dashboard_server
import warm

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("FORGESCOPE_CHROMIUM", "/usr/bin/chromium")
HOSTILE_MODEL = "tests/fixtures/model_files/script_class_name.py"
HTML_ERROR_MODEL = "tests/fixtures/model_files/html_error_message.py"
# names from the hostile fixture: the model class, its hidden layers' class, the list subclass holding them
# (the asterisks would turn into emphasis if the text reached markdown unescaped)
SCRIPT, IMG, LIST = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "<i>*LayerList*</i>"
# the run's name, as a training script may give it (Probe(run_name=...))
RUN_NAME = "hostile-<svg onload=alert(5)>"
ERROR_TEXT = "<b>bold</b><script>alert(3)</script><img src=y onerror=alert(4)>"

try:
    from playwright.sync_api import sync_playwright
except ImportError:             # pragma: no cover - reported as a skip below (a failure under CI=true)
    sync_playwright = None

needs_browser = pytest.mark.skipif(
    sync_playwright is None or not os.path.exists(CHROMIUM),
    reason=f"needs playwright (pip install -r requirements-dev.txt) and chromium at {CHROMIUM} (apt-get install "
           f"chromium)")


# -- static guards -------------------------------------------------------------------------------------
def app_sources() -> dict[str, ast.Module]:
    files = sorted((ROOT / "app").rglob("*.py"))
    assert len(files) >= 10, files
    return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p)) for p in files}


def test_streamlit_config_keeps_the_dashboard_local_and_takes_no_uploads():
    config = tomllib.loads((ROOT / "app" / ".streamlit" / "config.toml").read_text())
    # the file beside app/main.py (read wherever `streamlit run` starts) says what `forgescope ui` passes as flags
    from app.server import SAFE_OPTIONS
    flat = {f"{section}.{key}": value for section, options in config.items() for key, value in options.items()}
    assert {key: flat.get(key) for key in SAFE_OPTIONS} == SAFE_OPTIONS
    # and the repository root's .streamlit (read when started from the clone) is that same folder
    assert (ROOT / ".streamlit").resolve() == (ROOT / "app" / ".streamlit").resolve()
    server = config["server"]
    assert server["address"] == "127.0.0.1"
    assert sorted(server["allowedHosts"]) == ["127.0.0.1", "localhost"]
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True
    assert not server.get("corsAllowedOrigins")          # no extra origin trusted
    assert server["maxUploadSize"] <= 1                   # MB: the app takes file paths, never uploaded code
    assert server.get("enableStaticServing", False) is False
    assert server.get("enableAgentApi", False) is False   # no HTTP API driving the app
    assert config["browser"]["gatherUsageStats"] is False
    # no widget in the app takes a file from the browser
    uploads = {"file_uploader", "camera_input", "audio_input"}
    found = [(path, node.lineno) for path, tree in app_sources().items() for node in ast.walk(tree)
             if (isinstance(node, ast.Attribute) and node.attr in uploads)
             or (isinstance(node, ast.keyword) and node.arg == "accept_file")]
    assert found == []


def test_no_app_code_executes_loads_or_unpickles_anything():
    """A static guard (a tripwire for review, not a proof): no module under app/ calls exec/eval/compile/
    __import__, imports importlib/runpy/pickle & co or torch, or touches torch.load / *pickle*; and raw HTML
    (st.html, unsafe_allow_html=True) is only ever a constant string, never user text. It reads the code, not
    strings or comments (the Checkpoint page's caption explains torch.load(weights_only=True) to the user).
    The behavioural guarantee, that the dashboard process never imports torch or the model file, is
    tests/test_app.py::test_the_dashboard_process_never_imports_torch_or_the_model_file."""
    banned_calls = {"exec", "eval", "compile", "__import__", "execfile"}
    banned_modules = {"importlib", "runpy", "pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib",
                      "marshal", "shelve", "torch", "code", "codeop"}
    problems = []
    for path, tree in app_sources().items():
        for node in ast.walk(tree):
            where = f"{path}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in banned_calls:
                problems.append(f"{where}: {node.func.id}(...)")
            elif isinstance(node, ast.Import):
                problems += [f"{where}: import {a.name}" for a in node.names
                             if a.name.split(".")[0] in banned_modules]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                    (node.module or "").split(".")[0] in banned_modules:
                problems.append(f"{where}: from {node.module} import ...")
            elif isinstance(node, ast.Attribute) and ("pickle" in node.attr.lower() or (
                    node.attr in ("load", "loads") and isinstance(node.value, ast.Name)
                    and node.value.id in banned_modules)):
                problems.append(f"{where}: {ast.unparse(node)}")
            elif isinstance(node, ast.Name) and node.id in ("__builtins__", "builtins"):
                problems.append(f"{where}: {node.id}")
            if isinstance(node, ast.Call):
                raw = (isinstance(node.func, ast.Attribute) and node.func.attr == "html") or any(
                    k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                    for k in node.keywords)
                if raw and not (node.args and isinstance(node.args[0], ast.Constant)):
                    problems.append(f"{where}: raw HTML built at run time: {ast.unparse(node)[:80]}")
    assert problems == []


# -- the running server --------------------------------------------------------------------------------
def check(model: str, run_dir: Path, steps: int) -> dict:
    """What `python -m probes check MODEL --steps N` records, run by the worker's own check (tests/warm.py)."""
    return warm.check(model, run_dir, steps=steps, device="auto")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run directory holding one checked run of the hostile-names fixture, renamed RUN_NAME (a run name is
    user-controlled too: `Probe(run_name=...)`).

    Left to itself, the worker names the run folder `<stamp>-<class name>` with the class name made safe for
    a folder: before that, the "/" of `</script>` made two nested folders the dashboard never found.
    """
    root = tmp_path_factory.mktemp("runs")
    result = check(HOSTILE_MODEL, root, steps=2)
    assert result["model"] == SCRIPT and result["error"] is None, result
    assert [f["code"] for f in result["findings"]] == ["unregistered-module"], result
    made = Path(result["run_dir"])
    assert made.parent == root and made.name.endswith("-_script_alert_1_script_"), made
    assert (made / "run.db").is_file()
    run = root / RUN_NAME
    shutil.move(made, run)
    return root, run


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    root, run = runs
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    proc, url = dashboard_server.start(root, log)
    yield url, int(url.rsplit(":", 1)[1]), root, run, log
    dashboard_server.stop(proc)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on this TCP port (Linux /proc/net/tcp and tcp6)."""
    found = set()
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        table = Path(f"/proc/net/{name}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:        # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))   # host-order words
                found.add(socket.inet_ntop(family, words))
    return found


def other_addresses() -> set[str]:
    """This machine's addresses that are not 127.0.0.1: the rest of the loopback range, ::1, and every
    interface address (`hostname -I`, and the address of the default route)."""
    found = {"127.0.0.2", "::1"}
    try:
        found |= set(subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split())
    except (OSError, subprocess.SubprocessError):
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))          # no packet is sent: this only picks the route's source address
            found.add(s.getsockname()[0])
        except OSError:
            pass
    return found - {"127.0.0.1"}


def test_the_server_listens_on_127_0_0_1_only(server):
    url, port, *_ = server
    assert listening_addresses(port) == {"127.0.0.1"}
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    others = other_addresses()
    reached = []
    for address in sorted(others):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            try:
                s.connect((address, port))
                reached.append(address)
            except OSError:
                pass
    assert reached == [], f"the dashboard answered on {reached} (tried {sorted(others)})"
    print(f"\nrefused on {sorted(others)}")


def handshake(port: int, host: str, origin: str | None) -> str:
    """A WebSocket opening handshake on /_stcore/stream, as a browser sends it; the response's status line."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n"
               + (f"Origin: {origin}\r\n" if origin else "") + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_the_websocket_refuses_foreign_origins_and_hosts(server):
    """Cross-site WebSocket hijacking (a page elsewhere opens the stream) and DNS rebinding (evil.example
    resolved to 127.0.0.1: the page is then same-origin with the Host it sends) are both refused."""
    _, port, *_ = server
    local = [(f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"), (f"localhost:{port}", f"http://localhost:{port}"),
             (f"127.0.0.1:{port}", None)]                      # a program, no browser: no Origin
    foreign = [(f"127.0.0.1:{port}", "http://evil.example"),
               (f"127.0.0.1:{port}", f"http://evil.example:{port}"),
               (f"localhost:{port}", "null"),                  # a sandboxed iframe or a file:// page
               (f"evil.example:{port}", f"http://evil.example:{port}"),    # DNS rebinding
               (f"evil.example:{port}", None),
               (f"127.0.0.1.evil.example:{port}", f"http://127.0.0.1.evil.example:{port}")]
    answers = {(h, o): handshake(port, h, o) for h, o in local + foreign}
    assert {k: v for k, v in answers.items() if k in local} == {k: "HTTP/1.1 101 Switching Protocols" for k in local}
    assert {k: v for k, v in answers.items() if k in foreign} == {k: "HTTP/1.1 403 Forbidden" for k in foreign}


def http(url: str, host: str | None = None, origin: str | None = None, method: str = "GET",
         data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, method=method, headers={
        **({"Host": host} if host else {}), **({"Origin": origin} if origin else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_http_to_a_foreign_host_carries_no_run_data(server):
    """Streamlit does not check the Host of plain HTTP requests (only the WebSocket's and the agent API's):
    a page rebound to 127.0.0.1 can read what HTTP serves. None of it is run data: the page shell, health,
    host config and session counters; every run, name and path travels over the WebSocket only. Uploads
    need the XSRF token, and the agent API (which would drive the app over HTTP) is off."""
    url, port, root, run, _ = server
    host, origin = f"evil.example:{port}", f"http://evil.example:{port}"
    secrets = [RUN_NAME, "hostile", "alert(", "LayerList", "script_class_name", str(root), str(ROOT), "run.db"]
    for path in ("/", "/_stcore/health", "/_stcore/host-config", "/_stcore/metrics", f"/{quote(RUN_NAME)}",
                 f"/runs?run={quote(RUN_NAME)}", "/_stcore/agent/openapi.json"):
        status, headers, body = http(url + path, host, origin)
        text = body.decode("utf-8", "replace")
        assert status in (200, 400, 403, 404), (path, status)
        assert [s for s in secrets if s in text] == [], (path, text[:500])
        # no browser page on another origin may read the answer
        assert headers.get("access-control-allow-origin") in (None, "null"), (path, headers)
    status, _, body = http(f"{url}/_stcore/agent/interact", host, None, "POST", b"{}",
                           {"Content-Type": "application/json"})
    assert status == 403, body
    status, _, body = http(f"{url}/_stcore/upload_file/session/file", None, None, "PUT", b"x" * 10,
                           {"Content-Type": "application/octet-stream"})
    assert status == 403 and b"XSRF" in body, (status, body)
    status, _, _ = http(f"{url}/media/{'0' * 56}.html", host, origin)
    assert status == 404


# -- escaping ------------------------------------------------------------------------------------------
def test_the_html_report_escapes_names_from_the_model(runs):
    """app.htmlreport.render, the function behind the dashboard's "HTML report" download button."""
    from app import htmlreport
    from app.data import load_run
    _, run = runs
    report = htmlreport.render(load_run(str(run)))
    for text in (SCRIPT, IMG, LIST, RUN_NAME):
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert escaped in report, text
    for raw in ("<script>alert(1)", "<img src=x", "<i>*LayerList", "<svg onload"):
        assert raw not in report, raw


def page_list() -> list[tuple[str, str]]:
    """(title, url path) of every page of app/main.py: one added later is visited too. Ranks is left out:
    it is shown only for a run written by several torch.distributed ranks."""
    source = (ROOT / "app" / "main.py").read_text()
    pages = [(m["title"], m["path"] or "") for m in re.finditer(
        r'st\.Page\("views/\w+\.py", title="(?P<title>[^"]+)"[^)]*?(?:url_path="(?P<path>\w+)")?\)', source)]
    assert pages[0] == ("Findings", "") and ("Runs", "runs") in pages, pages
    return [p for p in pages if p[1] != "ranks"]


@pytest.fixture
def watched_page(browser, tmp_path):
    """A fresh page whose JavaScript dialogs (alert, confirm, prompt) are recorded and dismissed."""
    context = browser.new_context(viewport={"width": 1280, "height": 720}, accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page, dialogs
    context.close()


INJECTED = """() => [...document.querySelectorAll('[onload], [onerror], i, b, em, strong')]
    .filter(e => ['LayerList', '*LayerList*', 'bold'].includes(e.textContent) || e.hasAttribute('onerror')
                 || e.hasAttribute('onload')).map(e => e.outerHTML)"""


def assert_clean(page, dialogs: list[str], where: str) -> None:
    assert dialogs == [], where
    assert page.locator("[data-testid='stException']").count() == 0, (where, page.inner_text("body")[:2000])
    assert page.evaluate(INJECTED) == [], where          # no element made from the names


@needs_browser
def test_hostile_names_are_shown_as_text_on_every_page(server, watched_page, tmp_path):
    url = server[0]
    page, dialogs = watched_page
    query = f"?model={quote(HOSTILE_MODEL)}&run={quote(RUN_NAME)}"
    seen, timings, report = {}, {}, tmp_path / "report.html"
    for title, path in page_list():
        started = time.monotonic()
        page.goto(f"{url}/{path}{query}")
        page.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
        if title not in ("Runs", "Checkpoint doctor"):     # the pages showing the run's caption
            page.get_by_text(f"run {RUN_NAME}").first.wait_for(timeout=30_000)
        if title == "Findings":
            page.get_by_text("unregistered-module").first.wait_for(timeout=30_000)
            # the HTML report, downloaded with the button a user clicks
            with page.expect_download(timeout=60_000) as download:
                page.get_by_role("button", name="HTML report").click()
            download.value.save_as(report)
        if title == "Registration tree":            # the chart draws the class names (plotly renders some tags)
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
            labels = " ".join(page.locator(".js-plotly-plot text").all_text_contents())
            assert SCRIPT in labels and f"UNREGISTERED {LIST}" in labels, labels
        if title == "Runs":
            page.get_by_text("newest first").first.wait_for(timeout=30_000)
        time.sleep(0.3)                             # anything the page would run has run
        seen[title] = page.inner_text("body")
        if title == "Runs":                         # the "Run on screen" picker: a combobox's value, not text
            seen[title] += "\n" + page.get_by_role("combobox", name="Run on screen").input_value()
        assert_clean(page, dialogs, title)
        timings[title] = round(time.monotonic() - started, 1)
    for title in seen:
        if title not in ("Runs", "Checkpoint doctor"):
            assert SCRIPT in seen[title] and RUN_NAME in seen[title], (title, seen[title][:1500])
    findings = seen["Findings"]
    assert f"The model keeps 2 {IMG} module(s) in a Python {LIST}" in findings, findings[:3000]
    assert f"classes: {IMG}" in findings and f"hidden is a plain {LIST} of 2 module(s)" in findings
    assert f"hidden on (model) is a plain {LIST} of 2 module(s)" in seen["Registration tree"], \
        seen["Registration tree"][:2000]
    assert seen["Runs"].endswith(f"\n{RUN_NAME}"), seen["Runs"][-500:]
    # the downloaded report, opened in the browser
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report.read_text()
    page.goto(report.as_uri())
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
    time.sleep(0.3)
    text = page.inner_text("body")
    assert f"ForgeScope report: {SCRIPT}" in text and IMG in text and LIST in text and RUN_NAME in text
    assert page.title() == f"ForgeScope · {SCRIPT}"
    print(f"\nseconds per page: {timings}")
    assert_clean(page, dialogs, "HTML report")


@needs_browser
def test_an_exception_message_holding_html_is_shown_as_text(server, watched_page, tmp_path):
    """The dashboard runs the check itself (no run yet for this file): the failed check's message and the
    run's error are shown literally, and nothing in them runs."""
    url, *_ = server
    page, dialogs = watched_page
    page.goto(f"{url}/?model={quote(HTML_ERROR_MODEL)}")
    page.get_by_text("The last check failed").first.wait_for(timeout=90_000)
    page.get_by_text("The run stopped with an error").first.wait_for(timeout=30_000)
    time.sleep(0.5)
    body = page.inner_text("body")
    assert body.count(f"ValueError: {ERROR_TEXT}") == 2, body[:3000]
    assert "html_error_message.py:16 in forward" in body
    assert_clean(page, dialogs, "failed check")
    page.screenshot(path=str(tmp_path / "failed_check.png"))


def test_server_flags_stay_local_unless_a_host_is_asked_for():
    from app.server import is_loopback, streamlit_flags

    def options(flags):
        pairs = list(zip(flags[::2], flags[1::2]))
        out = {}
        for key, value in pairs:
            out.setdefault(key.removeprefix("--"), []).append(value)
        return out
    local = options(streamlit_flags(port=8600, headless=True))
    assert local["server.address"] == ["127.0.0.1"] and local["server.port"] == ["8600"]
    assert local["server.allowedHosts"] == ["localhost", "127.0.0.1"]
    assert local["browser.gatherUsageStats"] == ["false"] and local["server.headless"] == ["true"]
    shared = options(streamlit_flags(host="0.0.0.0", allowed_hosts=["gpu-box.lab"]))
    assert shared["server.address"] == ["0.0.0.0"] and "gpu-box.lab" in shared["server.allowedHosts"]
    assert socket.gethostname() in shared["server.allowedHosts"] and "*" not in shared["server.allowedHosts"]
    assert [is_loopback(a) for a in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "0.0.0.0", "", "::",
                                     "192.0.2.7")] == [True, True, True, True, False, False, False, False]
