"""Every module the package imports is a declared dependency, and every module the tests import is one of the
package or of its ``test`` extra: a fresh ``pip install taskvec-ir[test]`` can run them all."""

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS = {
    "taskvec_ir",
    "hydra_plugins",
    "tiny_models",
    "wandb_records",
    "procs",
    "scenarios",
    "cache_workers",
    "sitecustomize",
    "servers",
    "beir_folders",
    "hub_mirror",
    "lucene_reference",
    "adapt_cases",
    "hand_runs",
    "fusion_reference",
}


def imported_modules(folder: Path) -> set[str]:
    """Top-level names of the absolute imports in the Python files under ``folder``, without the standard library."""
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - OURS - {"__future__"}


def declared(extra: str | None = None) -> set[str]:
    """Normalised names of taskvec-ir's requirements (with ``extra``: that extra's too)."""
    names = set()
    for requirement in importlib.metadata.requires("taskvec-ir"):
        name, _, marker = requirement.partition(";")
        if not marker or (extra and f'extra == "{extra}"' in marker):
            names.add(_normalise(re.split(r"[\s<>=!~\[]", name.strip())[0]))
    return names


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(modules: set[str]) -> dict[str, set[str]]:
    installed = importlib.metadata.packages_distributions()
    return {module: {_normalise(d) for d in installed.get(module, [])} for module in modules}


# Imported only by the task that needs them, which says which extra to install when they are missing.
OPTIONAL = {"wandb_workspaces": "workspace"}  # taskvec_ir.reporting.workspace: task=workspace


def test_every_import_of_the_package_is_a_declared_dependency():
    found = distributions(imported_modules(REPO / "src"))
    missing = {m: d for m, d in found.items() if not d & (declared(OPTIONAL[m]) if m in OPTIONAL else declared())}
    assert not missing, f"imported by src/ but not in [project.dependencies] (or its extra): {missing}"


def test_every_import_of_the_tests_is_in_the_test_extra_or_the_package():
    allowed = declared() | declared("test")
    missing = {m: d for m, d in distributions(imported_modules(REPO / "tests")).items() if not d & allowed}
    assert not missing, f"imported by tests/ but not in the test extra or the dependencies: {missing}"
