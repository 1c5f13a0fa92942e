"""A table's grid: its cells (``table.datasets`` × ``table.models`` × ``table.merges``) and its general-domain
entries (``table.general_domain`` × models × merges), each composed and checked before anything runs.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from taskvec_ir.config.composed import PSEUDO_QUERIES_NEED_BM25, PSEUDO_QUERIES_NEED_CANDIDATES, Config
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.model import SUPERVISED_LABEL
from taskvec_ir.config.sweep import RetentionConfig
from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.config.table import PARETO_SELECTION, TableConfig
from taskvec_ir.errors import UserError
from taskvec_ir.runs.compose import typed_config

log = logging.getLogger("taskvec_ir")

# Settings of the command that are the table's own, or that each step sets itself.
_DRIVER_KEYS = ("table.", "+table.", "task=", "hydra.run.", "hydra.sweep.", "hydra.mode", "hydra.sweeper.storage")


@dataclass(frozen=True, kw_only=True)
class GridEntry:
    """What a cell and a general-domain entry share: the grid's model and merge they run, the overrides that compose
    them (the collection's, the model's, the merge's) and the typed config those compose to."""

    model: str
    merge: str
    overrides: tuple[str, ...]
    config: Config


@dataclass(frozen=True)
class Cell(GridEntry):
    """One (dataset, model, merge) of the grid; ``retention``: its Pareto row's (``table.pareto``), None where it
    has none."""

    dataset: str
    retention: RetentionConfig | None = None

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.model}/{self.merge}"

    @property
    def has_dev(self) -> bool:
        return has_dev_split(self.config.dataset)

    def selections(self, table_selections: list[str]) -> list[str]:
        labelled = ["dev", *([PARETO_SELECTION] if self.retention else [])] if self.has_dev else ["cross_validation"]
        return labelled + list(table_selections)


@dataclass(frozen=True)
class GeneralDomain(GridEntry):
    """A general-domain collection (``table.general_domain.<label>``) for one model × merge of the grid: the merged
    model of every cell with that model and merge, on another corpus, is evaluated on its test split at each α and
    λ the cell's selections chose. A (α, λ) is one job, shared by every cell and selection that chose it. Its model
    config is the cells' exactly; where it differs between cells (``for_datasets``: the cells' datasets it is for),
    each is an entry of its own (``general_domains``)."""

    label: str
    for_datasets: str = ""

    @property
    def name(self) -> str:
        name = f"general/{self.label}/{self.model}/{self.merge}"
        return f"{name}/{self.for_datasets}" if self.for_datasets else name

    def covers(self, cell: Cell) -> bool:
        """Whether ``cell``'s merged model is evaluated here: same model and merge, another corpus (a cell on the
        general collection itself, or a carve-out of it, is no test of another domain), the same model config."""
        same_corpus = cell.config.dataset.docs == self.config.dataset.docs
        same_model = asdict(cell.config.model) == asdict(self.config.model)
        return (cell.model, cell.merge) == (self.model, self.merge) and not same_corpus and same_model


def cells(cfg: Config, compose) -> list[Cell]:
    """Every cell of ``cfg.table``, each config composed and checked (``compose(overrides)``) before anything
    runs: a wrong name or value fails here, naming the table entry."""
    table, found = cfg.table, []
    corpus = None  # the general collection of the Pareto rows: its documents
    if table.pareto.retention:
        corpus = _typed(compose, (f"dataset={table.pareto.retention}",), "table.pareto.retention").dataset.docs
    for dataset, model, merge, overrides in _grid_entries(table, "datasets"):
        where = f"table cell {dataset}/{model}/{merge}"
        config = _typed(compose, overrides, where)
        if "pseudo_queries" in table.selections and config.retriever.backend == "run_file":
            raise UserError(f"{where}: {PSEUDO_QUERIES_NEED_BM25}")
        if "pseudo_queries" in table.selections and config.retriever.dense:
            raise UserError(
                f"{where}: {PSEUDO_QUERIES_NEED_CANDIDATES} "
                "(for a dense table: table.selections=[stability,nqc,entropy])"
            )
        retention = _retention(table, config, overrides, compose, where, corpus)
        found.append(Cell(dataset, model=model, merge=merge, overrides=overrides, config=config, retention=retention))
    if table.pareto.retention and not any(cell.retention for cell in found):
        # a preset's Pareto rows (table_demo's) on a user's collection without dev: the rest of the table still runs
        log.warning(
            "table.pareto.retention=%s: no cell of the table has a dev split and another corpus than the general "
            "collection, so the table has no Pareto row (a Pareto row is tuned on dev against the retention on "
            "another corpus; table.pareto.retention=null says you want none)",
            table.pareto.retention,
        )
    supervised = sorted({cell.model for cell in found if cell.config.model.supervised})
    if supervised and len(supervised) < len({cell.model for cell in found}):
        raise UserError(
            f"table.models: {', '.join(supervised)} trained ΘD on relevance labels (a {SUPERVISED_LABEL}), and a "
            "table of zero-shot models must not hold it: leave it out (table.models.<label>=null) and tabulate it "
            "on its own (e.g. experiment=supervised_control_demo)"
        )
    return found


def has_dev_split(dataset: DatasetConfig) -> bool:
    """A dev split apart from the test split (MIRACL's test split is its dev split: it has none)."""
    return "dev" in dataset.splits and dataset.test_split != "dev"


def _retention(table: TableConfig, config: Config, overrides: tuple[str, ...], compose, where: str, corpus):
    """The general collection's settings of a cell's Pareto row (``table.pareto``), composed and checked as its step
    will run them; None where the cell has none: it has no dev split, or its corpus is the general collection's
    (``corpus``: its documents' id; None where the table has no Pareto rows)."""
    if corpus is None or not has_dev_split(config.dataset) or config.dataset.docs == corpus:
        return None
    pareto = (*overrides, *table.pareto.step_overrides())
    return _typed(compose, pareto, f"{where}, its Pareto row (table.pareto)").sweep.retention


def supervised(cells: list[Cell]) -> bool:
    """Whether the table is a supervised control's (``cells`` refuses a table that mixes one with zero-shot models)."""
    return any(cell.config.model.supervised for cell in cells)


def general_domains(cfg: Config, compose, cells: Sequence[Cell], pins: Path) -> list[GeneralDomain]:
    """Every general-domain collection × model × merge of ``cfg.table``, each config composed and checked before
    anything runs: a misspelt collection fails here, naming ``table.general_domain.<label>``.

    A general job evaluates exactly its cells' Θ'. Composed as ``dataset=<general> model=<m>``, a model whose config
    reads the cell (a ΘD trained on ``${dataset}``, ``model.language`` in a dataset's entry) would be another: so
    each distinct model config of the cells an entry covers is its own entry, that config written to ``pins``
    (``model/pinned_<hash>.yaml``) and chosen there by ``model=pinned_<hash>``, then checked to compose to the
    cell's."""
    systems = f"systems=[{','.join(PAPER_ORDER)}]"  # a general-domain job evaluates the table's systems
    found = []
    for label, model, merge, overrides in _grid_entries(cfg.table, "general_domain", systems):
        where = f"table.general_domain.{label}"
        by_model: dict[str, list[Cell]] = {}  # the model configs of the grid's cells with this model and merge
        for cell in cells:
            if (cell.model, cell.merge) == (model, merge):
                by_model.setdefault(_model_yaml(cell.config), []).append(cell)
        try:
            plain, refused = _typed(compose, overrides, where), None
        except UserError as error:  # e.g. a supervised ΘD's training split, which the general collection lacks
            plain, refused = None, error
        if plain is not None and set(by_model) <= {_model_yaml(plain)}:
            entries = [GeneralDomain(label, model=model, merge=merge, overrides=overrides, config=plain)]
        else:
            entries = []
            for text, group in by_model.items():
                pinned = _pinned(overrides, text, pins)
                try:
                    config = _typed(compose, pinned, where)
                except UserError:
                    raise refused or UserError(f"{where}: {model}'s config of {group[0].name} fails there") from None
                if _model_yaml(config) != text:
                    raise UserError(
                        f"{where}: model {model} of the cells {', '.join(c.name for c in group)} composes to another "
                        f"model config in its general job ({' '.join(pinned)}): give the model's settings in "
                        f"table.models.{model}'s overrides, not on the command line"
                    )
                datasets = "+".join(c.dataset for c in group) if len(by_model) > 1 else ""
                entry = GeneralDomain(label, datasets, model=model, merge=merge, overrides=pinned, config=config)
                entries.append(entry)
        for entry in entries:
            for cell in filter(entry.covers, cells):
                if cell.config.retriever.dense != entry.config.retriever.dense:
                    raise UserError(
                        f"{where}: cell {cell.name} has retriever.dense={cell.config.retriever.dense} and its general "
                        "job would not: give retriever=dense (or leave it out) on the command, for every job alike"
                    )
        found += entries
    return found


def _model_yaml(config: Config) -> str:
    """A typed config's model as YAML: what a pinned model config holds, and what makes two model configs equal."""
    return yaml.safe_dump(asdict(config.model), sort_keys=False)


def _pinned(overrides: tuple[str, ...], text: str, pins: Path) -> tuple[str, ...]:
    """``overrides`` with the model chosen as ``text`` says, written into ``pins`` as a config of the model group:
    the entry's own model overrides dropped (``text`` holds what they did)."""
    name = f"pinned_{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    (pins / "model").mkdir(parents=True, exist_ok=True)
    (pins / "model" / f"{name}.yaml").write_text(f"# A table cell's model config (runs/table_grid.py)\n{text}")
    kept = [o for o in overrides if not re.match(r"[+~]*model(=|\.)", o)]
    return (*kept, f"model={name}", f"hydra.searchpath=[file://{pins.resolve()}]")


def command_overrides(task: list[str], hydra: list[str]) -> list[str]:
    """The command's overrides every step of every cell inherits (not the table's own keys)."""
    return [o for o in [*task, *hydra] if not o.lstrip("+~").startswith(_DRIVER_KEYS)]


def _grid_entries(table, datasets_key: str, *extra: str):
    """(dataset label, model, merge, overrides) of every entry of ``table.<datasets_key>`` × models × merges."""
    for dataset, dataset_overrides in table.entries(datasets_key).items():
        for model, model_overrides in table.entries("models").items():
            for merge, merge_overrides in table.entries("merges").items():
                overrides = (
                    *_with_default("dataset", dataset, dataset_overrides),
                    *_with_default("model", model, model_overrides),
                    *_with_default("merge", merge, merge_overrides),
                    *extra,
                )
                yield dataset, model, merge, overrides


def _typed(compose, overrides: tuple[str, ...], where: str) -> Config:
    """The typed config of a table entry's ``overrides``; any error names the entry (``where``)."""
    try:
        return typed_config(compose([*overrides, "task=evaluate"]))
    except Exception as error:  # noqa: BLE001 - Hydra's and the schema's errors alike
        raise UserError(f"{where} ({' '.join(overrides)}): {error}") from None


def _with_default(group: str, label: str, overrides: list[str]) -> list[str]:
    """An entry's overrides, with ``<group>=<label>`` first unless they choose the group's config themselves."""
    chosen = any(o.split("=", 1)[0].lstrip("+~") == group for o in overrides)
    return list(overrides) if chosen else [f"{group}={label}", *overrides]
