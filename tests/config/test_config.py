"""Every config in conf/ composes, and the default experiment is the documented one."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from taskvec_ir.config.schema import CONFIG_DIR, AdaptConfig, Config, register, to_config
from taskvec_ir.runs.compose import typed_config

register()

GROUPS = {
    group.name: sorted(p.stem for p in group.glob("*.yaml")) for group in Path(CONFIG_DIR).iterdir() if group.is_dir()
}
# scorer, adapt and sweep_base are included by other configs (model/*, experiment/*, sweep/*), not chosen on
# their own.
CHOICES = [
    (group, option)
    for group, options in GROUPS.items()
    if group not in {"scorer", "adapt", "sweep_base", "hydra"}
    for option in options
]


@pytest.fixture(scope="module")
def beir_folder(tmp_path_factory) -> Path:
    """The smallest BEIR layout: its qrels files are the dataset=beir config's splits."""
    folder = tmp_path_factory.mktemp("beir")
    (folder / "qrels").mkdir()
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/dev.tsv"):
        (folder / name).write_text("")
    return folder


@pytest.mark.parametrize("group, option", CHOICES)
def test_every_config_composes_and_resolves(group, option, monkeypatch, beir_folder):
    monkeypatch.setenv("GERMANQUAD_BEIR", "/data/germanquad")
    # dataset=beir names its collection on the command line
    overrides = ["dataset.name=mine", f"dataset.beir_path={beir_folder}"] if option == "beir" else []
    if option == "run_file":  # names its run on the command line
        overrides = ["retriever.path=runs/bm25.trec"]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"{group}={option}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # for ${hydra:...} in the job's keys
    typed = typed_config(cfg)  # typed, splits resolved, and passes every check that needs no data or model
    assert isinstance(typed, Config)
    if group == "model":
        assert typed.model.kind in {"bi_encoder", "cross_encoder", "monot5", "causal_lm"}
        assert all(getattr(typed.model, role) for role in ("base", "domain", "ir"))
        assert {"batch_size", "max_length", "device", "dtype"} <= set(vars(typed.model.scorer))
        assert isinstance(typed.model.domain, str | AdaptConfig)
    if group == "dataset":
        assert typed.dataset.test_split in typed.dataset.splits
        assert typed.retriever.backend == "inverted_index"  # MIRACL's millions of passages included
    if option == "beir":
        assert typed.dataset.splits == {"dev": "mine/dev", "test": "mine/test"}


def test_typing_a_config_reads_no_beir_folder(tmp_path):
    """Building a config reads no file: a BEIR folder's splits are read when the config is resolved to run."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["dataset=beir", "dataset.name=mine", f"dataset.beir_path={tmp_path}/none"])
    assert to_config(cfg).dataset.splits == {}
    with pytest.raises(FileNotFoundError, match="no BEIR collection at .*none: fix dataset.beir_path"):
        typed_config(cfg)


def test_default_experiment_is_the_demo_on_scifact_test():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config")
    assert (cfg.model.name, cfg.dataset.name, cfg.split, cfg.alpha.value) == ("minilm_demo", "scifact", "test", 0.5)
    assert cfg.model.base == cfg.model.ir  # Θ0 := ΘT for the demo triple


def test_paper_triples_are_all_there():
    assert {"monot5_base", "monot5_large", "mt5_base", "roberta_bi", "distilbert_bi", "llama2_7b"} <= set(
        GROUPS["model"]
    )
    assert {
        "scifact",
        "nfcorpus",
        "trec_covid",
        "scidocs",
        "miracl_fr",
        "miracl_es",
        "miracl_en",
        "germanquad",
        "cranfield",
    } <= set(GROUPS["dataset"])


@pytest.mark.parametrize("option", GROUPS["sweep"])
def test_sweeps_tune_on_dev_with_our_sweeper(option):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=[f"sweep={option}"], return_hydra_config=True)
    assert cfg.split == "dev" and cfg.hydra.sweeper.direction == "maximize"
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.taskvec_ir_sweeper.ResumableOptunaSweeper"
    assert "alpha.value" in cfg.hydra.sweeper.params
    if option == "paper_grid":
        assert (
            cfg.hydra.sweeper.params["alpha.value"] == "choice(" + ", ".join(f"{i / 10:.1f}" for i in range(11)) + ")"
        )
    if option in ("alpha", "paper_grid"):  # λ is chosen inside each trial
        assert cfg.lam.value is None and "lam.value" not in cfg.hydra.sweeper.params


@pytest.mark.parametrize("launcher, parallel", [(None, 1), ("local", 2), ("slurm", 4)])
def test_sweeps_launch_as_many_trials_as_the_launcher_runs(launcher, parallel):
    overrides = ["sweep=alpha"] + ([f"launcher={launcher}"] if launcher else [])
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    assert cfg.hydra.sweeper.n_jobs == parallel


@pytest.mark.parametrize("option", [o for o in GROUPS["experiment"] if "table" in o])
def test_every_cell_of_every_table_composes(option, monkeypatch):
    """A table's cells are checked before anything runs; those shipped all compose (the paper's six triples,
    mT5 with each dataset's language)."""
    from taskvec_ir.runs import table_grid

    monkeypatch.setenv("GERMANQUAD_BEIR", "/data/germanquad")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        typed = to_config(compose("config", overrides=[f"experiment={option}"]))
        cells = table_grid.cells(typed, lambda extra: compose("config", overrides=[f"experiment={option}", *extra]))
    assert len(cells) == len(typed.table.datasets) * len(typed.table.models) * len(typed.table.merges)
    for cell in cells:
        assert cell.config.dataset.name == cell.dataset or cell.dataset.startswith(cell.config.dataset.name)
        if cell.config.model.language:  # mT5: the domain model of the dataset's language
            assert cell.config.model.language in cell.config.model.domain
        if cell.dataset.startswith("miracl"):
            assert not cell.has_dev  # MIRACL's test split is its dev split: cross-validated
