"""The import contract: simkit's modules import one way, without cycles.

Layers, lowest first; a module may import from its own layer and the layers below it, never above:

0. base: ``simkit._version``, ``errors``, ``schema``, ``types``, ``paths``, ``streams``, ``progress``, ``data``,
   ``io``, ``placement``, ``outputs``
1. ``simkit.model``: pure functions of parameters and a random generator (config objects reach them as arguments;
   ``model.manipulation`` names their classes for type checkers only)
2. ``simkit.config``: validated config objects, whose checks use the models' math
3. ``simkit.electorate``: stations, registers, regions; real returns
4. ``simkit.engine``: plans, runs, parallelism, results
5. analyses: ``simkit.polls``, ``simkit.forensics``, ``simkit.timeline``, ``simkit.inference``
6. presentation: ``simkit.report``, ``simkit.plots``
7. the command line (``simkit.cli``) and the package root (``simkit/__init__.py``, the
   public API; nothing inside simkit imports it)

Every import counts, at module or function level (``if TYPE_CHECKING:`` blocks excepted): the graph they make has no
cycle, and an import inside a function carries a ``# reason:`` comment on its first line saying why it is there (an
optional heavy dependency, say) rather than at the top of the module.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "simkit"

LAYERS = [
    {"simkit._version", "simkit.errors", "simkit.schema", "simkit.types", "simkit.paths", "simkit.streams",
     "simkit.progress", "simkit.data", "simkit.io", "simkit.placement", "simkit.outputs"},
    {"simkit.model"},
    {"simkit.config"},
    {"simkit.electorate"},
    {"simkit.engine"},
    {"simkit.polls", "simkit.forensics", "simkit.timeline", "simkit.inference"},
    {"simkit.report", "simkit.plots"},
    {"simkit.cli", "simkit"},
]



def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    """Index in :data:`LAYERS` of the longest group that is ``module`` or contains it."""
    best, index = "", None
    for i, group in enumerate(LAYERS):
        for name in group:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, index = name, i
    if index is None:
        raise AssertionError(f"{module}: in no layer of the import contract (add it to LAYERS)")
    return index


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(module: str) -> list[tuple[str, int, bool]]:
    """(imported simkit module, line, inside a function) for each import in ``module`` outside TYPE_CHECKING
    blocks; ``from P import x`` counts as an import of ``P.x`` when that is a module, else of ``P``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno, in_function) for a in child.names
                             if a.name.split(".")[0] == "simkit")
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package
                    for _ in range(child.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                if base.split(".")[0] == "simkit":
                    for alias in child.names:
                        target = f"{base}.{alias.name}"
                        found.append((target if target in MODULES else base, child.lineno, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def graph() -> dict[str, set[str]]:
    return {module: {target for target, _, _ in imports(module) if target != module}
            for module in MODULES}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer(module)


@pytest.mark.parametrize("module", [m for m in MODULES])
def test_imports_go_down_the_layers(module):
    wrong = [f"line {line}: {target} (layer {layer(target)})" for target, line, _ in imports(module)
             if layer(target) > layer(module)]
    assert not wrong, f"{module} (layer {layer(module)}) imports from a higher layer: {'; '.join(wrong)}"


@pytest.mark.parametrize("module", [m for m in MODULES])
def test_function_level_imports_give_a_reason(module):
    lines = MODULES[module].read_text(encoding="utf-8").split("\n")
    unexplained = [f"line {line}: {target}" for target, line, in_function in imports(module)
                   if in_function and "# reason:" not in lines[line - 1]]
    assert not unexplained, f"{module}: function-level imports without '# reason:': {'; '.join(unexplained)}"


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = walk(target)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state:
            cycle = walk(module)
            assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_contract_catches_what_it_forbids(tmp_path, monkeypatch):
    """The checks can fail: an upward import, an unexplained function-level import and a cycle are caught."""
    assert layer("simkit.engine.run") > layer("simkit.config.core") > layer("simkit.model.turnout")
    fake = tmp_path / "simkit"
    (fake / "config").mkdir(parents=True)
    (fake / "engine").mkdir()
    (fake / "config" / "core.py").write_text("from simkit.engine import run\n")
    (fake / "engine" / "run.py").write_text("def f():\n    from simkit.config import core\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "PACKAGE", fake)
    monkeypatch.setattr(this, "MODULES", {module_name(p): p for p in fake.rglob("*.py")})
    assert imports("simkit.config.core") == [("simkit.engine.run", 1, False)]
    assert imports("simkit.engine.run") == [("simkit.config.core", 2, True)]
    with pytest.raises(AssertionError, match="higher layer"):
        test_imports_go_down_the_layers("simkit.config.core")
    with pytest.raises(AssertionError, match="reason"):
        test_function_level_imports_give_a_reason("simkit.engine.run")
    with pytest.raises(AssertionError, match="cycle"):
        test_no_import_cycle()
