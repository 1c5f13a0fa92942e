"""The sweeper's configs: each setting has its value in one place (so two cannot disagree), every sweep composes
with all of them set, and Hydra finds the sweeper's configs through its plugin wherever a sweep is composed."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import omegaconf
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hydra_plugins.taskvec_ir_sweeper.config import (
    CmaEsSamplerConfig,
    GridSamplerConfig,
    NSGAIISamplerConfig,
    RandomSamplerConfig,
    SweeperConfig,
    TPESamplerConfig,
)
from taskvec_ir.config.composed import CONFIG_DIR, register

BASE = yaml.safe_load((Path(CONFIG_DIR) / "sweep_base" / "optuna.yaml").read_text())["hydra"]["sweeper"]
SWEEPS = sorted(path.stem for path in (Path(CONFIG_DIR) / "sweep").glob("*.yaml"))


def has_default(field: dataclasses.Field) -> bool:
    unset = (dataclasses.MISSING, omegaconf.MISSING)
    return field.default not in unset or field.default_factory is not dataclasses.MISSING


def test_each_sweeper_setting_has_its_value_in_one_place():
    """conf/sweep_base/optuna.yaml sets the sweeper's settings, which have no default in their dataclass; the
    rest have theirs in the dataclasses (the sampler, chosen by the defaults list, and the samplers' settings)."""
    fields = {field.name: field for field in dataclasses.fields(SweeperConfig)}
    assert set(BASE) <= set(fields), set(BASE) - set(fields)
    assert [name for name in BASE if has_default(fields[name])] == []
    assert [name for name, field in fields.items() if name not in BASE and not has_default(field)] == ["sampler"]
    for sampler in (TPESamplerConfig, RandomSamplerConfig, GridSamplerConfig, NSGAIISamplerConfig, CmaEsSamplerConfig):
        assert all(has_default(field) for field in dataclasses.fields(sampler)), sampler


@pytest.mark.parametrize("sweep", SWEEPS)
def test_every_sweep_composes_with_each_setting_from_its_one_place(sweep):
    register()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={sweep}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert OmegaConf.missing_keys(sweeper) == set()
    preset = yaml.safe_load((Path(CONFIG_DIR) / "sweep" / f"{sweep}.yaml").read_text())["hydra"]["sweeper"]
    composed = OmegaConf.to_container(sweeper)
    assert {key: composed[key] for key in BASE if key not in preset} == {
        k: v for k, v in BASE.items() if k not in preset
    }
    assert composed["max_failure_rate"] == 0.25 and composed["heartbeat_interval"] == 30


def test_a_sweep_composed_from_python_finds_the_sweeper_through_hydras_plugin_scan():
    """No module of ours registers the sweeper's configs: Hydra's scan of ``hydra_plugins`` does, at the first
    compose of a process (here a fresh one, which has imported nothing of the plugin)."""
    script = (
        "import sys; from taskvec_ir.runs.compose import compose; "
        "assert not any(name.startswith('hydra_plugins') for name in sys.modules); "
        "print(compose(['sweep=paper_grid']).sweep.name)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split()[-1] == "paper_grid", done.stderr[-2000:]
