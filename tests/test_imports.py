"""idia's import graph, read from the source (nothing is imported): imports go one way, with
no cycle, lab builds on unlearn and never the reverse, and no private name crosses a package.

Every import counts, also one inside a function (a lazy import still makes one module depend
on another)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"


def module_files() -> dict[str, Path]:
    """Module name -> file, for every module of the idia package."""
    modules = {}
    for path in sorted((SOURCE / "idia").rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str]]:
    """(module, name imported from it or "") for each import of an idia module in ``path``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((child, "") if child in modules else (base, alias.name))
    return [(module, what) for module, what in found if module in modules and module != name]


@pytest.fixture(scope="module")
def imports() -> dict[str, list[tuple[str, str]]]:
    modules = module_files()
    return {name: imported(name, path, modules) for name, path in modules.items()}


def test_the_import_graph_has_no_cycle(imports) -> None:
    graph = {name: {module for module, _ in found} for name, found in imports.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for module in sorted(graph[name]):
            visit(module, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def is_interface(name: str) -> bool:
    """The command-line layer, which may call into any package."""
    last = name.rpartition(".")[2]
    return name == "idia.cli" or name.startswith("idia.cli.") or last.endswith("command")


def test_unlearn_never_imports_the_lab(imports) -> None:
    """The lab certifies erasure (lab.defence uses unlearn); erasure needs synthetic data
    (idia.synthetic), never the lab."""
    upward = [
        f"{name} -> {module}"
        for name, found in imports.items()
        if name.startswith("idia.unlearn") and not is_interface(name)
        for module, _ in found
        if module.startswith("idia.lab")
    ]
    assert upward == []
    assert any(m.startswith("idia.unlearn") for m, _ in imports["idia.lab.defence"])
    assert any(m == "idia.synthetic" for m, _ in imports["idia.unlearn.method"])


def test_no_private_name_is_imported_from_another_package(imports) -> None:
    """``_name`` and ``_module`` stay inside their package (idia.evaluation's ``_run``, ...)."""

    def package(module: str) -> str:
        private = [i for i, part in enumerate(module.split(".")) if part.startswith("_")]
        parts = module.split(".")
        return ".".join(parts[: private[0]]) if private else module

    crossing = []
    for name, found in imports.items():
        for module, what in found:
            home = package(module) if any(p.startswith("_") for p in module.split(".")) else None
            if what.startswith("_") and not what.startswith("__"):
                home = module.rpartition(".")[0] if "." in module else module
            if home is not None and not (name == home or name.startswith(home + ".")):
                crossing.append(f"{name} imports {what or module} from {module}")
    assert crossing == []


def test_gradio_loads_only_when_the_web_page_is_built_or_served() -> None:
    """``idia serve`` and the library never pay for Gradio: it is imported inside the
    functions of idia.serve.page, nowhere else."""
    found = []
    for name, path in module_files().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_functions = {
            id(node)
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
        }
        for node in ast.walk(tree):
            modules = (
                [alias.name for alias in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )
            if any(m.split(".")[0] == "gradio" for m in modules):
                found.append((name, id(node) in in_functions))
    assert found and all(name == "idia.serve.page" and inside for name, inside in found), found
