"""The code's layout: one home per finding code, the findings catalogue held to the code, no import cycles.

Read from the source (AST) where it can be: which module builds a Finding of which code, what imports what.
"""
from __future__ import annotations

import ast
import inspect
import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

from probes import catalog

ROOT = Path(__file__).resolve().parent.parent
PROBES = ROOT / "probes"
DETECTORS = PROBES / "detectors"
MAX_LINES = 350


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(*packages: str) -> dict[str, Path]:
    """module name -> file, for every .py under these top-level packages."""
    return {module_name(p): p for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))}


# -- the import graph -----------------------------------------------------------------------------------
def module_level(tree: ast.Module):
    """The statements that run when the module is imported: its body and what if/try/with/class blocks at
    module level hold, never the body of a function (an import there runs when it is called)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt) or isinstance(child, ast.excepthandler):
                todo.append(child)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of `modules` it imports at module level. Relative imports are resolved;
    `from pkg import name` is an edge to pkg.name when that is a module, else to pkg; importing a.b.c also
    runs the packages a and a.b, which count unless the importer is inside them already (then they are
    being imported at that moment)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in module_level(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets += [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        edges: set[str] = set()
        own = set(_ancestors(name))
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules:
                edges.add(target)
                edges |= {a for a in _ancestors(target) if a in modules and a not in own}
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a -> b -> ... -> a), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_in_probes_and_app():
    """No cycle in the module-level imports of probes/ and app/. Imports inside functions do not count: they
    run on first call, when every module is loaded (the ones that remain are there to keep torch or
    streamlit out of a light import, not to break a cycle)."""
    graph = import_graph(sources("probes", "app"))
    assert "probes.detectors.memory_growth" in graph["probes.detectors"]        # the graph is really read
    assert "probes.watchers" in graph["probes.probe"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    # a module importing its own package's sibling is no cycle; the package importing back from a child is
    files = {"p.__init__": "from . import x\n", "p.x": "from . import y\n", "p.y": "import os\n"}
    assert find_cycle(_graph_of(files)) is None
    files["p.y"] = "from p import x\n"
    assert find_cycle(_graph_of(files)) == ["p.x", "p.y", "p.x"]


def _graph_of(files: dict[str, str]) -> dict[str, set[str]]:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        mods = {}
        for name, text in files.items():
            parts = name.split(".")
            path = Path(tmp, *parts[:-1], parts[-1] + ".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            mods[name.removesuffix(".__init__")] = path
        return import_graph(mods)


# -- who builds which finding ---------------------------------------------------------------------------
class Constructions(ast.NodeVisitor):
    """Every Finding(...) call in one module: (code it builds or None when it cannot be told, the severities
    its severity= expression can give, line). The code is read from code=, or the first argument: a string,
    a module-level constant, an imported constant (`from .x import CODE`, `x.CODE`), or a class's `code`."""

    def __init__(self, path: Path, resolve_module, root: Path = ROOT):
        self.tree = ast.parse(path.read_text(), str(path))
        self.name = module_name(path, root)
        self.package = self.name if path.name == "__init__.py" else self.name.rpartition(".")[0]
        self.resolve_module = resolve_module
        self.constants = {t.id: n.value.value for n in self.tree.body if isinstance(n, ast.Assign)
                          and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                          for t in n.targets if isinstance(t, ast.Name)}
        self.imported: dict[str, tuple[str, str | None]] = {}   # local name -> (module, attribute or None)
        self.finding_names = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                base = self._base(node)
                for a in node.names:
                    local = a.asname or a.name
                    if base == "probes.findings" and a.name == "Finding":
                        self.finding_names.add(local)
                    elif resolve_module(f"{base}.{a.name}") is not None:
                        self.imported[local] = (f"{base}.{a.name}", None)
                    else:
                        self.imported[local] = (base, a.name)
        self.calls: list[tuple[str | None, set[str], int]] = []
        self._classes: list[ast.ClassDef] = []
        self.visit(self.tree)

    def _base(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.package.split(".")
        parts = parts[:len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    def visit_ClassDef(self, node):
        self._classes.append(node)
        self.generic_visit(node)
        self._classes.pop()

    def visit_Call(self, node):
        func = node.func
        if (isinstance(func, ast.Name) and (func.id in self.finding_names or func.id == "Finding")) or (
                isinstance(func, ast.Attribute) and func.attr == "Finding"):
            kw = {k.arg: k.value for k in node.keywords}
            code = kw.get("code", node.args[0] if node.args else None)
            severity = kw.get("severity", node.args[1] if len(node.args) > 1 else None)
            severities = {n.value for n in ast.walk(severity) if isinstance(n, ast.Constant)
                          and isinstance(n.value, str)} if severity is not None else set()
            self.calls.append((self.code_of(code), severities, node.lineno))
        self.generic_visit(node)

    def code_of(self, node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.constants:
                return self.constants[node.id]
            if node.id in self.imported:
                module, attr = self.imported[node.id]
                return self.resolve_module(module, attr) if attr else None
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == "self" and node.attr == "code":
                for cls in reversed(self._classes):
                    for stmt in cls.body:
                        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code"
                                                                for t in stmt.targets):
                            return self.code_of(stmt.value)
            if isinstance(node.value, ast.Name) and node.value.id in self.imported:
                module, attr = self.imported[node.value.id]
                if attr is None:
                    return self.resolve_module(module, node.attr)
        return None


def _resolver(modules: dict[str, Path]):
    """resolve(module) -> the module if it is one of ours, else None; resolve(module, name) -> the string
    constant `name` is bound to at that module's top level, or None."""
    def resolve(module: str, name: str | None = None):
        path = modules.get(module)
        if name is None or path is None:
            return path
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return node.value.value if isinstance(node.value, ast.Constant) else None
        return None
    return resolve


def constructions() -> dict[str, list[tuple[str | None, set[str], int]]]:
    """module -> the Finding(...) calls in it, for every module of probes/ and app/."""
    modules = sources("probes", "app")
    resolve = _resolver(modules)
    found = {}
    for name, path in modules.items():
        calls = Constructions(path, resolve).calls
        if calls:
            found[name] = calls
    return found


def test_the_finding_scan_reads_every_way_a_code_is_given(tmp_path):
    """The scan below is what the one-home rule rests on: it must tell the code of each way of writing it."""
    pkg = tmp_path / "probes"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "findings.py").write_text("class Finding: ...\n")
    (pkg / "sub" / "consts.py").write_text('CODE = "from-a-constant"\n')
    (pkg / "sub" / "m.py").write_text(
        "from ..findings import Finding as F\nfrom . import consts\nfrom .consts import CODE\n"
        'LOCAL = "local-constant"\n'
        'F(code="a-string", severity="error" if x else "warning")\nF(LOCAL, "info")\nF(code=CODE)\n'
        'F(code=consts.CODE)\nclass W:\n    code = "class-code"\n    def emit(self):\n        F(code=self.code)\n'
        "F(code=compute())\n")
    modules = {module_name(p, tmp_path): p for p in pkg.rglob("*.py")}
    scan = Constructions(pkg / "sub" / "m.py", _resolver(modules), root=tmp_path).calls
    assert [c for c, _, _ in scan] == ["a-string", "local-constant", "from-a-constant", "from-a-constant",
                                       "class-code", None]
    assert scan[0][1] == {"error", "warning"} and scan[1][1] == {"info"}


def code_module(code: str) -> str:
    return "probes.detectors." + code.replace("-", "_")


def test_each_code_is_built_in_its_own_detector_module_and_nowhere_else():
    found = constructions()
    unknown = [(m, line) for m, calls in found.items() for code, _, line in calls if code is None]
    assert not unknown, f"Finding(...) whose code cannot be read from the source: {unknown}"
    built: dict[str, set[str]] = {}
    for module, calls in found.items():
        for code, _, line in calls:
            built.setdefault(code, set()).add(module)
            assert module == code_module(code), (
                f"{module}:{line} builds a {code} finding: only {code_module(code)} may (call its functions)")
    assert set(built) == set(catalog.CODES), ("built but not catalogued", set(built) - set(catalog.CODES),
                                              "catalogued but never built", set(catalog.CODES) - set(built))
    for e in catalog.CATALOG:
        assert e.detector == code_module(e.code) and built[e.code] == {e.detector}
        assert (ROOT / (e.detector.replace(".", "/") + ".py")).is_file()


def test_no_module_but_its_own_holds_a_code_as_a_constant():
    """Watchers and the other modules take a code from its module (`memory_growth.CODE`), never a copy."""
    codes = set(catalog.CODES)
    for name, path in sources("probes").items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant) \
                    and node.value.value in codes:
                assert name == code_module(node.value.value), f"{name}:{node.lineno} holds {node.value.value!r}"


def test_the_catalogue_gives_the_severities_its_detectors_use():
    found = constructions()
    used: dict[str, set[str]] = {}
    for calls in found.values():
        for code, severities, _ in calls:
            used.setdefault(code, set()).update(severities)
    for e in catalog.CATALOG:
        assert e.severity == e.severities[0] and len(set(e.severities)) == len(e.severities)
        assert used[e.code] == set(e.severities), (e.code, used[e.code], e.severities)


def test_every_detector_module_is_a_code_or_a_shared_helper():
    """probes/detectors holds one module per code; anything else is shared and marked so (_name.py), or the
    package's base classes and thresholds."""
    stems = {p.stem for p in DETECTORS.glob("*.py")}
    shared = {s for s in stems if s.startswith("_")} | {"base", "thresholds"}
    assert stems - shared == {e.code.replace("-", "_") for e in catalog.CATALOG}


# -- the catalogue against the rest -----------------------------------------------------------------------
def test_samples_exist_and_name_their_code():
    listed = set()
    for e in catalog.CATALOG:
        if not e.samples:
            continue
        bug, fixed = e.samples
        assert bug == f"sample_models/{e.code.replace('-', '_')}.py" and fixed == bug.replace(".py", "_fixed.py")
        text = (ROOT / bug).read_text()
        doc = ast.get_docstring(ast.parse(text)) or ""
        finds = re.search(r"^Finds: (.*)$", doc, re.M)
        assert finds, bug
        named = {part.split()[0] for part in finds[1].split(",")}         # "code @ module at the bug"
        # the sample test counts errors and warnings only: an info code's sample says so in its docstring
        assert e.code in named or (e.severity == "info" and finds[1] == "nothing" and e.code in doc), bug
        assert re.search(r"^Finds: nothing$", ast.get_docstring(ast.parse((ROOT / fixed).read_text())) or "", re.M)
        listed |= {bug, fixed}
    twins = {f"sample_models/{p.name}" for p in (ROOT / "sample_models").glob("*_fixed.py")}
    pairs = twins | {t.replace("_fixed.py", ".py") for t in twins}
    assert pairs == listed, ("samples with a fixed twin that no code lists", pairs - listed)


def test_the_readme_findings_table_is_the_catalogue():
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if re.match(r"\| `[a-z-]+`", line)]
    assert rows == catalog.readme_rows()
    codes = [c for row in rows for c in re.findall(r"`([a-z-]+)`", row.split(" | ")[0])]
    assert codes == list(catalog.CODES)


def test_each_chart_is_the_one_the_dashboard_draws():
    from app import evidence
    charted = {e.code: e.chart for e in catalog.CATALOG if e.chart}
    assert set(evidence.CHARTS) == set(charted)
    for code, chart in charted.items():
        assert evidence.CHARTS[code].__name__ == chart and getattr(evidence, chart) is evidence.CHARTS[code]
    assert evidence.evidence_chart({"code": "dead-units", "evidence": {}}, None) is None


def test_each_watcher_module_watches_its_code():
    from probes.detectors.base import Watcher
    from probes.watchers import WATCHERS
    import importlib
    watched: dict[str, set[str]] = {}
    for cls in WATCHERS:
        watched.setdefault(cls.code, set()).add(cls.__module__)
        assert cls.code in catalog.CODES or cls.code in catalog.NOT_CODES, cls
    for e in catalog.CATALOG:
        if e.watcher is None:
            assert e.code not in watched, e.code
            continue
        assert watched[e.code] == {e.watcher}, e.code
        module = importlib.import_module(e.watcher)
        assert e.watcher.rsplit(".", 1)[1] == e.code.replace("-", "_")
        assert any(inspect.isclass(v) and issubclass(v, Watcher) and v.code == e.code for v in vars(module).values())


def test_not_codes_are_no_codes():
    assert not set(catalog.NOT_CODES) & set(catalog.CODES)
    assert '"forgescope-heartbeat"' in (PROBES / "runs.py").read_text()


def test_codes_command_prints_the_catalogue():
    from probes.cli import main
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["codes", "--json"]) == 0
    printed = json.loads(out.getvalue())
    assert printed == catalog.as_dicts()
    assert [p["code"] for p in printed] == list(catalog.CODES) and len(printed) == 27
    assert all(p["detector"] and p["summary"] and p["severity"] in p["severities"] for p in printed)
    # the table, from a fresh process: exit 0, every code on its own line, without importing torch
    run = subprocess.run([sys.executable, "-c", "import sys; from probes.cli import main; rc = main(['codes']); "
                          "assert 'torch' not in sys.modules; sys.exit(rc)"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    for code in catalog.CODES:
        assert any(line.startswith(code + " ") for line in lines), code


def test_detector_and_watcher_modules_stay_small():
    files = [*DETECTORS.glob("*.py"), *(PROBES / "watchers").glob("*.py"), PROBES / "catalog.py",
             PROBES / "construction.py"]
    assert len(files) > 40
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_no_module_of_the_library_or_the_dashboard_is_long():
    """Every module in probes/ and app/ stays under MAX_LINES: one job each (a module that grows past it is
    doing two)."""
    files = [*PROBES.rglob("*.py"), *(ROOT / "app").rglob("*.py")]
    assert len(files) > 80
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"
