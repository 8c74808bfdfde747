"""The package's shape, checked from its source (DESIGN.md, "One fact, one place"): no import
circle between its modules, no import of the package placed inside a function to dodge one, no
function longer than a screen.

Imports are read with ``ast``, nothing is executed. An import of ``a.b.c`` also runs the
``__init__`` of ``a.b``, so it counts as an import of that package too, except from inside
``a.b`` (a package is initialized before its modules run) and for the root package, whose
``__init__`` only gathers the public API.
"""

import ast
from pathlib import Path

PACKAGE = "keras_lightnets"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
MAX_FUNCTION_LINES = 80


def _modules():
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _resolve(module, node):
    """The package modules an import node names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _with_parents(name):
    """``a.b.c`` and the packages whose ``__init__`` importing it runs (``a.b``), root left out."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts) + 1)]


def _edges(top_level_only=True):
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else ast.walk(tree)
        targets = set()
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _resolve(module, node):
                    targets.update(
                        m
                        for m in _with_parents(name)
                        # a module's own packages are initialized before it runs: not an edge
                        if m in MODULES and m != module and not module.startswith(f"{m}.")
                    )
        graph[module] = targets
    return graph


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_circle_between_the_package_modules():
    cycles = _cycles(_edges())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(cycle) for cycle in cycles)


def test_no_package_import_inside_a_function():
    found = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom) and any(
                        name == PACKAGE or name.startswith(f"{PACKAGE}.") for name in _resolve(module, inner)
                    ):
                        found.append(f"{path.relative_to(ROOT.parent)}:{inner.lineno} in {node.name}()")
    assert not found, "package imports inside functions (a cycle dodged):\n" + "\n".join(sorted(set(found)))


def test_no_function_longer_than_a_screen():
    long = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    body = body[1:]  # the docstring
                if body and body[-1].end_lineno - body[0].lineno + 1 > MAX_FUNCTION_LINES:
                    long.append(
                        f"{path.relative_to(ROOT.parent)}:{node.name} ({body[-1].end_lineno - body[0].lineno + 1})"
                    )
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
