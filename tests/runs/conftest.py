"""Fixtures of the runs' tests: the package's config composed as the command composes it."""

import pytest
from hydra import compose, initialize_config_dir

from taskvec_ir.config.composed import CONFIG_DIR, register
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.runs.table_grid import cells


@pytest.fixture(scope="session")
def hydra_compose():
    """``hydra_compose(overrides)``: the package's config with ``overrides`` (the command's, without its app)."""
    register()

    def composed(overrides):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("config", overrides=overrides)

    return composed


@pytest.fixture(scope="module")
def table_demo(hydra_compose):
    """The demo table's config and its cells (SciFact has a dev split, Cranfield has none)."""
    cfg = typed_config(hydra_compose(["experiment=table_demo"]))
    return cfg, cells(cfg, lambda extra: hydra_compose(["experiment=table_demo", *extra]))
