"""The composed config (``conf/config.yaml``): ``Config`` with every group, the rules across groups, and its
registration as the schema Hydra composes ``conf/config.yaml`` against. ``parse_config`` types and checks a composed
config without reading any file; ``taskvec_ir.runs.compose.typed_config`` then reads a BEIR folder's splits.
"""

from __future__ import annotations

import importlib.resources
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import MISSING, OmegaConf

from taskvec_ir.config.analysis import Analysis, AnalysisConfig
from taskvec_ir.config.checks import Choice, choice, parse
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.measures import MEASURES, check_measures
from taskvec_ir.config.merge import AlphaConfig, LamConfig, MergeConfig
from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.model import PRIMARY, AdaptConfig, ModelConfig, ModelKind
from taskvec_ir.config.retriever import Backend, RetrieverConfig
from taskvec_ir.config.runtime import CacheConfig, DataConfig, WandbConfig
from taskvec_ir.config.selection import SelectionConfig, SelectionMethod
from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.sweep import SweepConfig
from taskvec_ir.config.systems import BM25, DOMAIN_MODEL, IR_MODEL, TASK_ARITHMETIC, System
from taskvec_ir.config.table import TableConfig
from taskvec_ir.errors import UserError

# The configs ship inside the package: an installed taskvec-ir runs in any folder. The top-level conf/ is
# installed as the package taskvec_ir.conf (pyproject.toml maps it): found the same way from a wheel and from a
# source checkout.
CONFIG_DIR = str(importlib.resources.files("taskvec_ir.conf"))

PSEUDO_QUERIES_NEED_BM25 = (
    "selection=pseudo_queries retrieves its queries' candidates with BM25, which retriever=run_file does not "
    "give: choose another selection, or use retriever=bm25"
)
PSEUDO_QUERIES_NEED_CANDIDATES = (
    "selection=pseudo_queries ranks each pseudo-query's source text against BM25's candidates, and retriever=dense "
    "ranks the whole corpus (which holds the source itself): choose another selection, or use retriever=bm25"
)

# task: evaluate; adapt, only build the adapted checkpoints of the model (conf/adapt/); table, run a grid of
# cells (table); workspace, save the W&B workspace of docs/wandb.md to wandb.entity/wandb.project.
Task = Choice("Task", ["evaluate", "adapt", "table", "workspace"])


@dataclass
class Config:
    """One run's config, as ``conf/config.yaml`` composes it."""

    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    alpha: AlphaConfig = field(default_factory=AlphaConfig)
    lam: LamConfig = field(default_factory=LamConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    task: Task = Task.evaluate
    split: str | None = None  # the split evaluated (None: dataset.test_split)
    # what the results table evaluates: also alpha_one (α = 1) and domain_model (ΘD alone, bi-encoders)
    systems: list[System] = field(default_factory=lambda: [BM25, IR_MODEL, TASK_ARITHMETIC])
    # names of taskvec_ir.config.measures (ndcg@10, map@100, ...), or ir_measures' own
    measures: list[str] = field(default_factory=lambda: list(MEASURES))
    objective: str = "ndcg@10"  # the measure of task_arithmetic a sweep maximises (and lam.grid chooses by)
    save_merged: bool = False  # also write Θ' as a checkpoint (save_pretrained) into <job dir>/merged_model
    trial: int | None = None  # set by the sweeper: the Optuna trial number
    cache: CacheConfig = field(default_factory=CacheConfig)
    data: DataConfig = field(default_factory=DataConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    sweep: SweepConfig | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)  # α and λ chosen by the job (conf/selection/)
    table: TableConfig = field(default_factory=TableConfig)  # task=table: the grid (conf/experiment/*table*)
    significance: SignificanceConfig = field(default_factory=SignificanceConfig)  # a report's and a table's tests
    analyses: list[Analysis] = field(default_factory=list)  # run after the evaluation, on its split
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)  # their settings

    def __post_init__(self):
        self.task = choice(Task, self.task, "task")
        self.systems = [choice(System, system, "systems") for system in self.systems]
        self.analyses = [choice(Analysis, analysis, "analyses") for analysis in self.analyses]
        self.check_analyses()
        if self.task == Task.table:
            self.table.check()
        if self.selection.method is not None:
            self.check_selection()
        if self.retriever.dense and self.model.kind != ModelKind.bi_encoder:
            raise UserError(
                f"retriever=dense ranks the corpus by embeddings, which only a bi_encoder gives; model.kind is "
                f"'{self.model.kind}' (model {self.model.name}): use a bi-encoder model, or retriever=bm25 to re-rank"
            )
        self.split = self.split or self.dataset.test_split
        if DOMAIN_MODEL in self.systems and self.model.kind != ModelKind.bi_encoder:
            raise UserError("systems: domain_model (ΘD alone) can only be scored for bi_encoder models")
        if self.task == Task.evaluate and not self.systems and not self.save_merged:
            raise UserError(
                "systems: [] with save_merged=false would do nothing: name the systems to evaluate "
                f"({', '.join(System)}) or set save_merged=true"
            )
        check_measures(self.measures)
        if self.objective not in self.measures:
            raise UserError(
                f"objective: '{self.objective}' is not among measures ({', '.join(self.measures)}): "
                "add it there or choose one of them"
            )
        extra = set(self.model.extra_domains)
        if set(self.alpha.extra) != extra:
            raise UserError(
                f"alpha.extra: give one α per model.extra_domains entry (missing: "
                f"{sorted(extra - set(self.alpha.extra))}, unknown: {sorted(set(self.alpha.extra) - extra)})"
            )
        if not self.dataset.splits_in_folder:  # else checked once the folder's splits are read
            self.check_split()
        self.check_supervised()
        self.check_retention()
        vectors = self.model.vectors().values()
        if self.task == Task.adapt and not any(isinstance(domain, AdaptConfig) for _, domain in vectors):
            raise UserError(
                f"task=adapt: model '{self.model.name}' names no checkpoint to adapt (an adapt config "
                "at model.domain); e.g. model=minilm_scifact_adapted"
            )

    def check_selection(self) -> None:
        """A job that chooses α and λ itself: what the choice needs of the other keys."""
        if self.sweep is not None:
            raise UserError("selection: a sweep chooses α itself; drop selection=... or sweep=...")
        if not self.lam.grid:
            raise UserError("selection: λ is chosen from lam.grid: add lam=dev_grid or a lam.grid")
        if TASK_ARITHMETIC not in self.systems:
            raise UserError("selection: chooses α for task_arithmetic: add it to systems")
        if self.save_merged:
            raise UserError(
                "save_merged writes Θ' at alpha.value, and selection chooses α in the job: drop save_merged, or "
                "rerun with the chosen alpha.value (in the job's selection.json) and save_merged=true"
            )
        if self.selection.method == SelectionMethod.pseudo_queries and self.retriever.backend == Backend.run_file:
            raise UserError(PSEUDO_QUERIES_NEED_BM25)
        if self.selection.method == SelectionMethod.pseudo_queries and self.retriever.dense:
            raise UserError(PSEUDO_QUERIES_NEED_CANDIDATES)
        if self.selection.bootstrap.resamples and self.retriever.dense:
            raise UserError(
                "selection.bootstrap re-chooses λ on each resample, and retriever=dense fuses nothing: set "
                "selection.bootstrap.resamples=0, or use a BM25 retriever"
            )

    def check_analyses(self) -> None:
        """Analyses this job can run (they read task arithmetic's settings), and depths its first stage retrieved."""
        if not self.analyses:
            return
        if TASK_ARITHMETIC not in self.systems and self.task == Task.evaluate:
            raise UserError("analyses: they compare task arithmetic's α with ΘT's: add task_arithmetic to systems")
        if Analysis.effect_split in self.analyses and not self.retriever.dense:
            raise UserError(
                "analyses: effect_split compares τ's effect under dense retrieval with re-ranking BM25's top k: "
                "run it with retriever=dense (a bi-encoder), or drop effect_split from analyses"
            )
        if Analysis.depth not in self.analyses:
            return
        if self.retriever.dense:
            raise UserError(
                "analyses: depth re-ranks a first stage's top k, and retriever=dense ranks the whole corpus: "
                "drop depth from analyses, or use a BM25 retriever"
            )
        deeper = [d for d in self.analysis.depths or [] if d > self.retriever.top_k]
        if deeper:
            raise UserError(
                f"analysis.depths: {deeper} exceed retriever.top_k ({self.retriever.top_k}), the candidates "
                "retrieved: give depths up to it, or raise retriever.top_k"
            )

    def check_split(self) -> None:
        """The evaluated split is one of the dataset's (a sweep's message says how to give it one to tune on), and a
        λ chosen from ``lam.grid`` has a split to be chosen on (``check_lam_tuning``)."""
        if self.sweep is not None and not self.sweep.final and self.split not in self.dataset.splits:
            raise UserError(missing_tuning_split(self.dataset, self.split))
        self.dataset.split(self.split)
        self.check_lam_tuning()

    def lam_tuning_split(self) -> str | None:
        """The split λ is chosen on where ``lam.value`` is null: the evaluated split when it is not the dataset's
        test split (a sweep's trial on dev), else the dataset's ``dev`` split where it has one apart from test; None
        where it has neither (``check_lam_tuning`` refuses a run that would tune on test)."""
        splits, test = self.dataset.splits, self.dataset.test_split
        if self.split != test:
            return self.split
        return "dev" if "dev" in splits and test != "dev" and splits["dev"] != splits[test] else None

    def check_lam_tuning(self) -> None:
        """A run whose λ is chosen from ``lam.grid`` (``lam.value`` null) never chooses it on the test labels it is
        evaluated on."""
        plain = self.task == Task.evaluate and self.selection.method is None and self.sweep is None
        if plain and self.lam.value is None and not self.retriever.dense and self.lam_tuning_split() is None:
            raise UserError(
                f"lam.value is null (lam=dev_grid): λ would be tuned on the labels of {self.dataset.name}'s test "
                "split, which is evaluated, and it has no dev split to tune on: give lam.value (e.g. "
                "lam.value=0.3), use a dataset with a dev split (e.g. dataset=cranfield_split), or let a selection "
                "choose λ without the test labels (selection=cross_validation)"
            )

    def check_retention(self) -> None:
        """A Pareto sweep's general collection (``sweep.retention``) is another corpus, retrieved as the target is."""
        retention = self.sweep.retention if self.sweep is not None else None
        if retention is None:
            return
        if retention.dataset.docs == self.dataset.docs:
            raise UserError(
                f"sweep.retention.dataset: '{retention.dataset.name}' has the target's corpus ({self.dataset.docs}), "
                "and retention is measured on another domain: choose another (dataset@sweep.retention.dataset=<name>)"
            )
        if self.retriever.backend == Backend.run_file:
            raise UserError(
                "sweep.retention: retriever=run_file reads the target's run file, which holds no query of the general "
                "collection: use retriever=bm25 (or dense) for a Pareto sweep"
            )

    def check_supervised(self) -> None:
        """A supervised ΘD trained on the evaluated collection never saw a query this run tunes or evaluates on:
        its pairs split is not one of them, and it left out the splits this run has (not another dev sample)."""
        tuned = {self.split, self.dataset.test_split}
        tuned |= {self.sweep.tune_split} if self.sweep is not None else set()
        tuned |= {self.selection.queries} if self.selection.method is not None else set()
        for name, adapt in self.model.supervised_domains().items():
            key = "model.domain" if name == PRIMARY else f"model.extra_domains.{name}.domain"
            if adapt.dataset.docs != self.dataset.docs:
                continue  # trained on another collection's labels: none of this run's queries
            if adapt.pairs_split in tuned:
                raise UserError(
                    f"{key}.pairs_split: '{adapt.pairs_split}' is a split this run tunes or evaluates on "
                    f"({', '.join(sorted(tuned))}): train the supervised control on a split this run neither tunes "
                    "nor evaluates on"
                )
            if adapt.dataset.splits != self.dataset.splits:
                raise UserError(
                    f"{key}.dataset: its splits differ from dataset.splits, so its training could include a query "
                    "this run tunes or evaluates on: use model.domain.dataset=${dataset}"
                )

    def merge_setting(self) -> MergeSetting:
        """Θ' as configured: α of each task vector, the merge method and the per-tensor factors."""
        alphas = ((PRIMARY, self.alpha.value), *((name, self.alpha.extra[name]) for name in self.model.extra_domains))
        return MergeSetting(alphas, self.merge.method_row(), self.alpha.scale())


def missing_tuning_split(dataset: DatasetConfig, split: str) -> str:
    """What a sweep says when ``dataset`` has no ``split`` to tune on: its splits, the overrides that give it one
    (pasted as they are, they compose), and the other ways: a shipped config with the split, sweep.tune_split,
    and cross-validation, which needs no dev split."""
    splits = ", ".join(f"{name} ({spec})" if isinstance(spec, str) else name for name, spec in dataset.splits.items())
    ways = [f"add it: {shlex.join(dataset.tuning_split_overrides(split))}"]
    shipped = Path(CONFIG_DIR) / "dataset" / f"{dataset.name}_split.yaml"  # as cranfield_split is cranfield's
    if split == "dev" and shipped.is_file():
        ways.append(f"dataset={dataset.name}_split: a config that has it")
    ways += [
        f"selection=cross_validation in place of -m sweep=...: α and λ chosen by k-fold cross-validation on "
        f"{dataset.test_split}'s queries, which needs no dev split",
        "sweep.tune_split=<split>: tune on another split of the dataset",
    ]
    return f"dataset {dataset.name!r} has no {split!r} split to tune on (its splits: {splits or 'none'}); either\n" + (
        "\n".join(f"  - {way}" for way in ways)
    )


def parse_config(cfg) -> Config:
    """The typed, checked ``Config`` of a config Hydra composed (its ``hydra`` node, if any, left out), reading no
    file: a BEIR folder's splits stay unread (``taskvec_ir.runs.compose.typed_config`` reads them). A value that
    fails to resolve (a missing environment variable) or to check is one ``UserError`` naming the key."""
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]) if "hydra" in cfg else cfg
    # Through a plain container: a key added with `+` that the schema lacks is then refused, not dropped.
    return parse(Config, OmegaConf.to_container(job))


def register() -> None:
    """Make ``Config`` the schema of ``conf/config.yaml`` (its defaults list names ``taskvec_ir_schema``); the
    sweeper's configs are stored by its plugin (``hydra_plugins.taskvec_ir_sweeper.config``)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="taskvec_ir_schema", node=Config, provider="taskvec_ir")
