"""Hermetic test environment: every cache, home and tracker writes into a temporary folder.

The variables are set when this file is imported, before any test module imports ir_datasets
or wandb, because those libraries read them at import time.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="taskvec-ir-tests-"))
# pip's download cache stays the user's: the package test installs into a fresh venv, which should not fetch
# every wheel again. It holds no state tests depend on.
os.environ.setdefault("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
for var, sub in {
    "HOME": "home",
    "IR_DATASETS_HOME": "ir_datasets",
    "HF_HOME": "hf",
    "WANDB_DIR": "wandb",
    "WANDB_DATA_DIR": "wandb/data",
    "WANDB_CACHE_DIR": "wandb/cache",
    "WANDB_CONFIG_DIR": "wandb/config",
}.items():
    (_TMP / sub).mkdir(parents=True, exist_ok=True)
    os.environ[var] = str(_TMP / sub)
# A persistent matplotlib cache (set by the Makefile) keeps its ~45 s font scan out of every test session; it
# holds no state that tests depend on.
os.environ.setdefault("MPLCONFIGDIR", str(_TMP / "mpl"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """The cluster and package tiers by where their tests live (make test-fast leaves them out)."""
    for item in items:
        path = Path(item.path).relative_to(REPO / "tests")
        if path.parts[0] == "cluster":
            item.add_marker(pytest.mark.cluster)
        elif path.name == "test_package.py":
            item.add_marker(pytest.mark.package)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def mirror_dir() -> Path:
    """Folder with the offline copies of the data sets (TASKVEC_IR_MIRROR, set by the Makefile).

    Required in CI; elsewhere the tests that need it are skipped with a note saying how to enable them.
    """
    value = os.environ.get("TASKVEC_IR_MIRROR")
    if value and Path(value, "cran.tar.gz").is_file():
        return Path(value).resolve()  # tests run jobs in other folders
    if os.environ.get("CI"):
        pytest.fail("TASKVEC_IR_MIRROR must name the folder holding cran.tar.gz and scifact_beir.zip in CI")
    pytest.skip("set TASKVEC_IR_MIRROR to the folder of offline data set copies to run this test")


@pytest.fixture(scope="module")
def triple(tmp_path_factory) -> dict[str, Path]:
    """A tiny bi-encoder triple (``tiny_models``): checkpoint folders by role."""
    from tiny_models import tiny_triple  # after the variables above are set: it imports transformers

    return tiny_triple(tmp_path_factory.mktemp("triple"), "bi_encoder")


@pytest.fixture
def cranfield_cfg(triple, mirror_dir, tmp_path):
    """The typed config of a run on real Cranfield with the tiny triple, BM25's top 10 and a fresh cache, plus
    ``overrides``."""
    from taskvec_ir.runs.compose import compose

    return lambda *overrides: compose(
        [
            "dataset=cranfield",
            "retriever.top_k=10",
            f"data.mirror_dir={mirror_dir}",
            f"cache.dir={tmp_path / 'cache'}",
            "model.scorer.show_progress=false",
            *(f"model.{role}={path}" for role, path in triple.items()),
            *overrides,
        ]
    )
