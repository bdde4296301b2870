"""Suite-wide rules: in CI (CI=true) a skipped test is a failure — nothing may silently not run."""
import os

import pytest

# One intra-op thread for torch, here and in every process the tests start (workers, training scripts,
# torchrun ranks): on a 2-core CI machine the test's own processes (a dashboard, chromium, pytest) share the
# cores with a worker, and torch's OpenMP threads waiting for a busy core doubled a check's time (5 s -> 11 s
# for sample_models/mlp.py, measured beside a running suite). The dashboard and the CLI keep torch's default.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# the real-world corpus holds model files and training loops, not tests (tests/test_realworld.py runs them)
collect_ignore = ["realworld"]


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") == "true" and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; in CI every test must run", red=True)
        session.exitstatus = 1


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one test process per core this process may use, at most 4 (each may start workers, servers and
    browsers of its own)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


# The files that take longest (the corpus, a minute of setup; the live-loop, browser and multi-process
# ones), scheduled first: with one file per test process (`--dist loadfile`), a long file taken last makes
# a tail in which the other processes have nothing left to do.
LONGEST_FIRST = ("test_realworld.py", "test_live.py", "test_browser.py", "test_checkpoint.py", "test_cli.py",
                 "test_cluster.py", "test_distributed.py", "test_load.py", "test_security.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))      # stable: each file keeps its order


def pytest_addoption(parser):
    parser.addoption("--overwrite", action="store_true",
                     help="rewrite the golden files under tests/test_output/ from the current output")


@pytest.fixture(scope="module")
def browser():
    """Headless chromium from the system's packages (FORGESCOPE_CHROMIUM, else /usr/bin/chromium), driven by
    Playwright; one per test module. Modules using it skip, with the reason, when either is missing."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("FORGESCOPE_CHROMIUM", "/usr/bin/chromium"),
                              args=["--no-sandbox"])
        yield b
        b.close()
