"""taskvec-ir as a user installs it: a wheel built from the repository, in a fresh virtual environment, run
in a folder outside the repository, with a dataset of the user's own from a config dir."""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOCAL_ONLY = (".git", ".venv", ".cache", "build", "dist", "*.egg-info", "outputs", "multirun", "__pycache__")
# Where the installed package keeps its configs, and whether its sweeper plugin imports.
WHERE = (
    "import importlib.resources, json, taskvec_ir, hydra_plugins.taskvec_ir_sweeper; "
    "conf = importlib.resources.files('taskvec_ir') / 'conf'; "
    "print(json.dumps([taskvec_ir.__file__, sorted(p.name for p in conf.iterdir())]))"
)


def run(*command, **options) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, stdin=subprocess.DEVNULL, **options
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin`` folder of a fresh venv holding the wheel of this repository and its dependencies."""
    root = tmp_path_factory.mktemp("package")
    # Built from a copy: setuptools writes its build/ folder into the source tree.
    source = shutil.copytree(REPO, root / "source", ignore=shutil.ignore_patterns(*LOCAL_ONLY))
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", source)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (root / "dist").glob("taskvec_ir-*.whl")
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    installation = run(bin_dir / "pip", "install", "-q", f"{wheel}[demo]", timeout=1800)
    assert installation.returncode == 0, installation.stderr[-3000:]
    return bin_dir


def test_the_wheel_ships_the_configs_and_the_sweeper(installed):
    location, conf = json.loads(run(installed / "python", "-c", WHERE, check=True).stdout)
    assert not location.startswith(str(REPO))  # the installed copy, not the source tree
    assert {"config.yaml", "dataset", "model", "sweep", "sweep_base", "merge"} <= set(conf)
    check = run(installed / "pip", "check")
    assert check.returncode == 0, check.stdout


def test_an_installed_taskvec_ir_runs_a_user_dataset_from_a_config_dir_outside_the_repository(
    installed, tmp_path, mirror_dir
):
    # The user's own dataset config: Cranfield under another name, extending the packaged one.
    (tmp_path / "myconf" / "dataset").mkdir(parents=True)
    (tmp_path / "myconf" / "dataset" / "my_cranfield.yaml").write_text(
        "defaults:\n  - cranfield\n  - _self_\nname: my_cranfield\n"
    )
    work = tmp_path / "somewhere"
    work.mkdir()
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir), "WANDB_MODE": "disabled", "PYTHONPATH": ""}
    overrides = [
        "dataset=my_cranfield",
        "retriever.top_k=10",
        "systems=[bm25,ir_model]",
        "hydra.run.dir=out",
        "model.scorer.show_progress=false",
        f"cache.dir={tmp_path / 'cache'}",
    ]
    result = run(
        installed / "taskvec-ir", "--config-dir", tmp_path / "myconf", *overrides, cwd=work, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((work / "out" / "metrics.json").read_text())["test"]
    assert set(metrics) == {"bm25", "ir_model"} and 0.30 < metrics["bm25"]["ndcg@10"] < 0.40
    assert "my_cranfield test · minilm_demo" in result.stdout
