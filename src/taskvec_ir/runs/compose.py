"""A composed Hydra config, typed and with its dataset's splits known: what every path runs from.

``taskvec_ir.config.composed.parse_config`` types and checks a config without reading any file; a BEIR folder's
splits are then read once, here (``taskvec_ir.ir.splits.resolve_splits``), so that a single run, a sweep, a
table's cells and a selection all see the same splits, and the evaluated split is checked against them.
"""

from __future__ import annotations

from omegaconf import DictConfig

from taskvec_ir.config.composed import CONFIG_DIR, Config, parse_config, register
from taskvec_ir.ir.splits import resolve_splits


def typed_config(cfg: DictConfig) -> Config:
    """The typed ``Config`` of a config Hydra composed, as a run needs it: ``parse_config``'s, and then a BEIR
    folder's splits read from the folder and the evaluated split checked against them."""
    config = parse_config(cfg)
    if config.dataset.splits_in_folder:
        resolve_splits(config.dataset)
        config.check_split()
    retention = config.sweep.retention if config.sweep is not None else None
    if retention is not None and retention.dataset.splits_in_folder:  # a Pareto sweep's general collection
        resolve_splits(retention.dataset)
        retention.check_split()
    return config


def compose(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """``conf/config.yaml`` composed with command-line style ``overrides``, typed: the config of a
    ``taskvec-ir`` run, from Python."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return typed_config(hydra_compose("config", overrides=list(overrides)))
