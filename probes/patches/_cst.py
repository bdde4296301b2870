"""The concrete-syntax-tree helpers every patcher uses: a parsed file with line positions and parents, and
the edits a patcher asks for (replace a node, insert statements before or after one, remove one), applied in
one pass so that the rest of the file is reproduced byte for byte."""
from __future__ import annotations

import builtins
from collections import defaultdict
from typing import Callable, Iterator

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

BLOCKS = (cst.IndentedBlock, cst.Module)
SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
LOOPS = (cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
BUILTINS = frozenset(dir(builtins))


class NotCertain(Exception):
    """A patcher met something it cannot be sure about: no patch."""


def require(condition, why: str = "") -> None:
    if not condition:
        raise NotCertain(why)


def dotted(node: cst.CSTNode | None) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted(node.value)
        return f"{head}.{node.attr.value}" if head else None
    return None


def call_name(call: cst.CSTNode) -> str | None:
    return dotted(call.func) if isinstance(call, cst.Call) else None


def is_method_call(node: cst.CSTNode, method: str, receiver: str | None = None) -> bool:
    """`<receiver>.<method>(...)` (any receiver when None)."""
    return (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == method
            and (receiver is None or dotted(node.func.value) == receiver))


def expr_stmt_call(stmt: cst.CSTNode) -> cst.Call | None:
    """The call of a statement line that is only a call (`optimizer.step()`), else None."""
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1 and isinstance(stmt.body[0], cst.Expr):
        value = stmt.body[0].value
        return value if isinstance(value, cst.Call) else None
    return None


def statement(code: str, source: "Source") -> cst.BaseStatement:
    return cst.parse_statement(code, config=source.module.config_for_parsing)


def expression(code: str, source: "Source") -> cst.BaseExpression:
    return cst.parse_expression(code, config=source.module.config_for_parsing)


class Source:
    """One parsed file: its module, each node's lines and parent."""

    def __init__(self, data: bytes):
        self.module_before = cst.parse_module(data)
        self.wrapper = MetadataWrapper(self.module_before)
        self.module = self.wrapper.module
        self.encoding = self.module.encoding
        self.positions = self.wrapper.resolve(PositionProvider)
        self.parents = self.wrapper.resolve(ParentNodeProvider)

    # -- where --------------------------------------------------------------------------------------
    def lines(self, node: cst.CSTNode) -> tuple[int, int]:
        p = self.positions[node]
        return p.start.line, p.end.line

    def nodes(self, kind=cst.CSTNode, within: cst.CSTNode | None = None) -> Iterator[cst.CSTNode]:
        """Every node of this kind (under `within`, default the whole file), in source order."""
        stack = [within or self.module]
        while stack:
            node = stack.pop()
            if isinstance(node, kind):
                yield node
            stack.extend(reversed(node.children))

    def on_line(self, line: int, kind=cst.CSTNode) -> list[cst.CSTNode]:
        """Nodes of this kind that start on `line`."""
        return [n for n in self.nodes(kind) if n in self.positions and self.positions[n].start.line == line]

    def statement_at(self, line: int) -> cst.BaseStatement:
        """The innermost statement that spans `line` (a simple statement line, or a compound statement's
        header)."""
        best = None
        for node in self.nodes(cst.BaseStatement):
            start, end = self.lines(node)
            if start <= line <= end and (best is None or end - start <= self.lines(best)[1] - self.lines(best)[0]):
                best = node
        require(best is not None, f"no statement at line {line}")
        return best

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        node = self.parent(node)
        while node is not None:
            yield node
            node = self.parent(node)

    def enclosing(self, node: cst.CSTNode, kind) -> cst.CSTNode | None:
        return next((a for a in self.ancestors(node) if isinstance(a, kind)), None)

    def function_of(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        """The function whose body holds `node` (not crossing a class or lambda)."""
        for a in self.ancestors(node):
            if isinstance(a, cst.FunctionDef):
                return a
            if isinstance(a, (cst.ClassDef, cst.Lambda)):
                return None
        return None

    def block_of(self, stmt: cst.CSTNode) -> tuple[cst.CSTNode, int]:
        """The block (indented body or the module) that holds `stmt` directly, and its index there."""
        block = self.parent(stmt)
        require(isinstance(block, BLOCKS), "not a statement of a block")
        return block, next(i for i, s in enumerate(block.body) if s is stmt)

    def statement_in(self, block: cst.CSTNode, node: cst.CSTNode) -> cst.BaseStatement | None:
        """The statement of `block` (directly) that holds `node`."""
        for a in [node, *self.ancestors(node)]:
            if self.parent(a) is block:
                return a
        return None

    def blocks_up(self, node: cst.CSTNode) -> Iterator[tuple[cst.CSTNode, cst.BaseStatement]]:
        """From the innermost outwards, each block around `node` and the statement of it that holds `node`,
        up to the function's own body (or the module)."""
        for a in self.ancestors(node):
            if isinstance(a, BLOCKS):
                yield a, self.statement_in(a, node)
            if isinstance(a, (cst.FunctionDef, cst.ClassDef)):
                return

    # -- names --------------------------------------------------------------------------------------
    def module_names(self) -> set[str]:
        """Names bound at the top of the file: imports, assignments, functions and classes."""
        names: set[str] = set()
        for stmt in self.module.body:
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                names.add(stmt.name.value)
            for node in self.nodes((cst.Import, cst.ImportFrom, cst.Assign, cst.AnnAssign), within=stmt):
                if self.function_of(node) is not None or self.enclosing(node, cst.ClassDef) is not None:
                    continue
                if isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
                    for alias in node.names:
                        bound = alias.asname.name if alias.asname else alias.name
                        names.add((dotted(bound) or "").split(".")[0])
                elif isinstance(node, cst.Assign):
                    for target in node.targets:
                        names.update(n.value for n in self.nodes(cst.Name, within=target.target)
                                     if not isinstance(target.target, cst.Attribute))
                elif isinstance(node, cst.AnnAssign) and isinstance(node.target, cst.Name):
                    names.add(node.target.value)
        return names

    def imported(self) -> dict[str, str]:
        """Top-level imports: the name bound -> the dotted thing it stands for (`nn` -> `torch.nn`)."""
        out: dict[str, str] = {}
        for stmt in self.module.body:
            for node in self.nodes((cst.Import, cst.ImportFrom), within=stmt):
                if isinstance(node.names, cst.ImportStar):
                    continue
                base = dotted(node.module) if isinstance(node, cst.ImportFrom) and node.module else None
                if isinstance(node, cst.ImportFrom) and (node.relative or base is None):
                    continue
                for alias in node.names:
                    full = dotted(alias.name)
                    if isinstance(node, cst.ImportFrom):
                        full = f"{base}.{full}"
                    if alias.asname:
                        out[dotted(alias.asname.name)] = full
                    else:
                        head = dotted(alias.name).split(".")[0]
                        out[head] = full if isinstance(node, cst.ImportFrom) else head
        return out

    def resolve(self, name: str | None) -> str | None:
        """A dotted name with its first part replaced by what the file imported it as (`nn.Linear` ->
        `torch.nn.Linear`); the name itself when its head is not imported."""
        if not name:
            return None
        head, _, rest = name.partition(".")
        full = self.imported().get(head)
        if full is None:
            return name
        return f"{full}.{rest}" if rest else full

    def reference(self, dotted_name: str) -> str | None:
        """How this file can name `torch.nn.ModuleList` (say) with what it imports: `nn.ModuleList`,
        `torch.nn.ModuleList` or `ModuleList`; None when it imports nothing that reaches it."""
        imported = self.imported()
        best = None
        for bound, full in imported.items():
            if dotted_name == full or dotted_name.startswith(full + "."):
                candidate = bound + dotted_name[len(full):]
                if best is None or len(candidate) < len(best):
                    best = candidate
        return best

    def params(self, fn: cst.FunctionDef) -> list[str]:
        p = fn.params
        return [x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)] + \
            [x.name.value for x in (p.star_arg, p.star_kwarg) if isinstance(x, cst.Param)]

    def self_name(self, fn: cst.FunctionDef | None) -> str | None:
        """The first parameter of a method defined directly in a class."""
        if fn is None or not isinstance(self.parent(self.parent(fn)), cst.ClassDef):
            return None
        names = [x.name.value for x in (*fn.params.posonly_params, *fn.params.params)]
        return names[0] if names else None

    def class_of(self, fn: cst.FunctionDef) -> cst.ClassDef | None:
        cls = self.parent(self.parent(fn))
        return cls if isinstance(cls, cst.ClassDef) else None

    def method(self, cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
        found = [s for s in cls.body.body if isinstance(s, cst.FunctionDef) and s.name.value == name]
        return found[0] if len(found) == 1 else None

    def assigned_names(self, within: cst.CSTNode) -> set[str]:
        """Plain names bound anywhere under `within` (assignments, for targets, with ... as, walrus,
        parameters of nested functions excluded)."""
        names: set[str] = set()
        for node in self.nodes((cst.AssignTarget, cst.AnnAssign, cst.AugAssign, cst.For, cst.AsName,
                                cst.NamedExpr, cst.CompFor), within=within):
            target = node.target if not isinstance(node, cst.AsName) else node.name
            names.update(n.value for n in self.nodes(cst.Name, within=target)
                         if not isinstance(self.parent(n), cst.Attribute) or self.parent(n).value is n)
        return names

    def self_attributes(self, cls: cst.ClassDef, self_name: str = "self") -> set[str]:
        """Every `self.<name>` the class's methods mention, and its methods and class attributes."""
        names = {dotted(n).split(".")[1] for n in self.nodes(cst.Attribute, within=cls)
                 if isinstance(n.value, cst.Name) and n.value.value == self_name}
        for stmt in cls.body.body:
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                names.add(stmt.name.value)
            for node in self.nodes(cst.AssignTarget, within=stmt) if not isinstance(stmt, cst.FunctionDef) else ():
                if isinstance(node.target, cst.Name):
                    names.add(node.target.value)
        return names

    def exits(self, within: cst.CSTNode) -> bool:
        """A return, yield, break or continue under `within` (not in a nested function, lambda or class)."""
        stack = list(within.children)
        while stack:
            node = stack.pop()
            if isinstance(node, (cst.Return, cst.Yield, cst.Break, cst.Continue)):
                return True
            if not isinstance(node, SCOPES):
                stack.extend(node.children)
        return False

    def below(self, node: cst.CSTNode, top: cst.CSTNode) -> bool:
        """`node` lies inside `top`."""
        return any(a is top for a in self.ancestors(node))

    # -- the change ---------------------------------------------------------------------------------
    def apply(self, edits: "Edits") -> bytes:
        return self.module.visit(edits).bytes


class Edits(cst.CSTTransformer):
    """What a patcher changes, each keyed by a node of the parsed file: replace it (a function of the node
    with any edits inside it already made), insert statements before or after a statement, remove a
    statement. Applied in one pass (Source.apply)."""

    def __init__(self) -> None:
        super().__init__()
        self._keep: list[cst.CSTNode] = []       # the keys stay alive, so their ids stay theirs
        self.replacements: dict[int, Callable[[cst.CSTNode], cst.CSTNode]] = {}
        self.before: dict[int, list[cst.BaseStatement]] = defaultdict(list)
        self.after: dict[int, list[cst.BaseStatement]] = defaultdict(list)
        self.removed: set[int] = set()
        self.count = 0

    def _key(self, node: cst.CSTNode) -> int:
        self._keep.append(node)
        self.count += 1
        return id(node)

    def replace(self, node: cst.CSTNode, new: cst.CSTNode | Callable[[cst.CSTNode], cst.CSTNode]) -> None:
        key = self._key(node)
        require(key not in self.replacements, "two changes of one node")
        self.replacements[key] = new if callable(new) else (lambda _updated, new=new: new)

    def insert_before(self, stmt: cst.CSTNode, *new: cst.BaseStatement) -> None:
        self.before[self._key(stmt)].extend(new)

    def insert_after(self, stmt: cst.CSTNode, *new: cst.BaseStatement) -> None:
        self.after[self._key(stmt)][0:0] = new

    def remove(self, stmt: cst.CSTNode) -> None:
        self.removed.add(self._key(stmt))

    def on_leave(self, original_node, updated_node):
        fn = self.replacements.get(id(original_node))
        if fn is not None:
            updated_node = fn(updated_node)
        if isinstance(original_node, BLOCKS) and isinstance(updated_node, BLOCKS):
            ids = [id(s) for s in original_node.body]
            if any(i in self.before or i in self.after or i in self.removed for i in ids):
                body: list[cst.BaseStatement] = []
                for i, stmt in zip(ids, updated_node.body):
                    body.extend(self.before.get(i, ()))
                    if i not in self.removed:
                        body.append(stmt)
                    body.extend(self.after.get(i, ()))
                require(body, "a block left empty")
                updated_node = updated_node.with_changes(body=body)
        return updated_node

    def __bool__(self) -> bool:
        return self.count > 0


def paren(expr: cst.BaseExpression) -> cst.BaseExpression:
    """`expr` as the receiver of a method call: parenthesised unless it is an atom."""
    if isinstance(expr, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or expr.lpar:
        return expr
    return expr.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def method_call(expr: cst.BaseExpression, method: str) -> cst.Call:
    """`expr.method()`."""
    return cst.Call(func=cst.Attribute(value=paren(expr), attr=cst.Name(method)))


def drop_arg(call: cst.Call, index: int) -> cst.Call:
    """The call without its argument at `index`, the commas kept right (`f(a, b)` -> `f(a)`)."""
    args = list(call.args)
    gone = args.pop(index)
    if args and index == len(args):          # the last one went: the one before takes its comma (or none)
        args[-1] = args[-1].with_changes(comma=gone.comma)
    return call.with_changes(args=args)
