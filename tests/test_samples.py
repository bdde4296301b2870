"""Every bundled sample, checked as `python -m probes check` checks it: each bug found where it is, each twin
clean.

The check is the worker's own (probes.worker.Check), run in a child forked from the test process
(tests/warm.py), and the exit code is the command line's own function of its result; the command line's
subprocess, JSON and exit codes end to end are tested in tests/test_cli.py.

Each sample's docstring ends with a line `Finds: entry, entry` (or `Finds: nothing`): exactly the findings
`python -m probes check` must report for it — errors and warnings; info findings are not counted. An entry
is `code`, then `@ module` (its dotted path; `(the model)` for the model itself; left out for a finding
that names no module, such as memory-growth), then `at the bug` when the finding must point at the line
of the sample marked with a trailing `# the bug` comment. Findings that only know a module (statistics of
the run, like exploding-gradients) point at its class; their entries leave out `at the bug`.

A sample whose check cannot finish has a line `Error: text` before `Finds:`: the check must fail in the
sample's own code with an error containing that text, and still report the findings.
"""
import ast
import json
import re
from pathlib import Path

import pytest

import warm
from probes.cli import exit_code

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "sample_models").glob("*.py"))
ENTRY = re.compile(r"(?P<code>[a-z][a-z-]*)(?: @ (?P<module>\(the model\)|[\w.]+))?(?P<at_bug> at the bug)?")


def docstring_lines(path: Path, key: str) -> list[str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return [line.removeprefix(key).strip() for line in doc.splitlines() if line.startswith(key)]


def expected_findings(path: Path) -> list[tuple[str, str | None, bool]]:
    """(code, module, at_bug) for each entry of the sample's `Finds:` line."""
    lines = docstring_lines(path, "Finds:")
    assert lines, f"{path.name}: the docstring needs a 'Finds: ...' line"
    if lines[-1] == "nothing":
        return []
    entries = []
    for text in lines[-1].split(","):
        m = ENTRY.fullmatch(text.strip())
        assert m, f"{path.name}: cannot read the Finds entry {text.strip()!r}"
        module = m["module"]
        entries.append((m["code"], "" if module == "(the model)" else module, bool(m["at_bug"])))
    return entries


def _sorted(pairs) -> list[tuple[str, str | None]]:
    """(code, module) pairs in a fixed order (a module may be None, which does not compare with a str)."""
    return sorted(pairs, key=lambda p: (p[0], repr(p[1])))


def bug_lines(path: Path) -> set[int]:
    return {i for i, line in enumerate(path.read_text().splitlines(), 1) if "# the bug" in line}


def test_there_are_samples_of_both_kinds():
    found = [expected_findings(p) for p in SAMPLES]
    assert any(found) and any(not f for f in found)


def test_entries_are_read_as_written(tmp_path):
    sample = tmp_path / "s.py"
    sample.write_text('"""Bug.\n\nFinds: a-code @ (the model) at the bug, b-code @ net.0, memory-growth\n"""\n')
    assert expected_findings(sample) == [("a-code", "", True), ("b-code", "net.0", False),
                                         ("memory-growth", None, False)]


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample(path, tmp_path):
    expected = expected_findings(path)
    error = docstring_lines(path, "Error:")
    result = warm.check(f"sample_models/{path.name}", tmp_path, steps=5)
    prefix = f"sample_models/{path.name}:"
    if error:
        assert result["error"] and result["error"].startswith(prefix) and error[0] in result["error"], \
            result["error"]
    else:
        assert result["error"] is None, result["error"]
    reported = [f for f in result["findings"] if f["severity"] != "info"]
    shown = json.dumps(reported, indent=1)
    assert _sorted((f["code"], f["module"]) for f in reported) == \
        _sorted((code, module) for code, module, _ in expected), shown
    errors = any(f["severity"] == "error" for f in reported)
    assert exit_code(result) == (2 if error else 1 if errors else 0)
    for finding in reported:
        if finding["location"] is not None:
            assert finding["location"].startswith(prefix), shown
    # findings that know the line point at the lines marked `# the bug`, each marked line at least once
    at_bug = {code for code, _, at in expected if at}
    if at_bug:
        lines = [f["location"] and f["location"].removeprefix(prefix) for f in reported if f["code"] in at_bug]
        assert all(line and line.isdigit() for line in lines), shown
        assert {int(line) for line in lines} == bug_lines(path), shown
