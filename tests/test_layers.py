"""The package's layers, enforced: a module imports only from its own layer or the layers below it, and no
two modules import each other, even through a function-level import.

From the bottom up:
- ``errors``: the errors a user can cause;
- ``storage``: atomic writes and the content-addressed cache;
- ``config``: the typed configs and the vocabularies they are checked against (measures, merge settings);
- ``ir``: data, first-stage retrieval, fusion, evaluation;
- ``models``: checkpoints, merging, scoring, adaptation;
- ``reporting``: significance and tables, W&B tracking, lineage;
- ``pipeline``: one experiment's stages wired together, and the selection of α and λ;
- ``runs``: a job, a sweep, a table of cells: what a command runs;
- the command itself (``app``, ``__main__``).
"""

import ast
import tomllib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "taskvec_ir"
LAYERS = ["errors", "storage", "config", "ir", "models", "reporting", "pipeline", "runs", "app"]
TOP_LEVEL = {"errors": "errors", "app": "app", "__main__": "app", "__init__": "errors"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "errors"  # the package itself
    return parts[1] if len(parts) > 2 or parts[1] in LAYERS[:-1] else TOP_LEVEL[parts[1]]


def imports(path: Path) -> set[str]:
    """Every taskvec_ir module ``path`` imports, at the top or inside a function (``from x import y`` names
    ``x.y`` when ``y`` is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("taskvec_ir")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("taskvec_ir"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
    return found - {module_name(path)}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_imports_only_its_layer_and_those_below(module):
    own = LAYERS.index(layer(module))
    upward = sorted(target for target in GRAPH[module] if LAYERS.index(layer(target)) > own)
    assert not upward, f"{module} ({layer(module)}) imports from a layer above it: {upward}"


def test_no_import_cycle():
    def visit(module, path):
        if module in path:
            return path[path.index(module) :] + [module]
        for target in GRAPH.get(module, ()):
            if cycle := visit(target, [*path, module]):
                return cycle
        return None

    for module in MODULES:
        assert (cycle := visit(module, [])) is None, " -> ".join(cycle)


def test_every_layer_is_a_package_the_wheel_carries():
    packaged = set(tomllib.loads((SRC.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {module_name(p.parent / "__init__.py") for p in PACKAGE.rglob("__init__.py")}
    assert folders - {"taskvec_ir.conf"} <= packaged
    assert {layer(m) for m in MODULES} == set(LAYERS)


def test_the_layering_rule_is_not_vacuous():
    """The checks above see real imports: the experiment imports the first stage, a run the experiment."""
    assert "taskvec_ir.ir.bm25_index" in GRAPH["taskvec_ir.pipeline.first_stage"]
    assert layer("taskvec_ir.runs.job") == "runs" and "taskvec_ir.pipeline.pipeline" in GRAPH["taskvec_ir.runs.job"]
