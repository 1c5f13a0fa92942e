"""The ``dataset`` key (``conf/dataset/``): a collection read through ir_datasets, and its splits: ir_datasets ids,
or seeded samples of another split's queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from taskvec_ir.config.checks import Choice, choice, parse
from taskvec_ir.errors import UserError

# dataset.language: picks the BM25 analyzer's stopwords and stemmer (taskvec_ir.ir.analyzers).
Language = Choice("Language", ["en", "de", "fr", "es"])

# The languages as plain strings: Python 3.11's `in` on an Enum class refuses a str.
LANGUAGES = tuple(Language)


@dataclass
class SampleSplit:
    """A seeded random ``fraction`` of another split's queries (with their qrels), e.g. SciFact's dev; with
    ``rest``, the queries that sample leaves out (a dev/test split of a collection that has one query set)."""

    sample_of: str = MISSING
    fraction: float = MISSING
    seed: int = 42
    rest: bool = False


@dataclass
class DatasetConfig:
    """A collection read through ir_datasets (``conf/dataset/``)."""

    name: str = MISSING  # short name used in outputs and W&B
    docs: str = MISSING  # ir_datasets id whose docs_iter() is the corpus
    doc_fields: list[str] = field(default_factory=lambda: ["title", "text"])  # joined by a space
    query_field: str = "text"
    language: Language = Language.en
    test_split: str = "test"  # the split evaluated as "test"
    # split name -> an ir_datasets id, or {sample_of: <split>, fraction, seed, rest}; with beir_path, those of the
    # folder too (one per qrels/<split>.tsv, read by taskvec_ir.ir.splits.resolve_splits); a configured one wins
    splits: dict[str, Any] = field(default_factory=dict)
    relevance_map: dict[Any, Any] | None = None  # grade -> new grade, or null to drop the row; other grades kept
    offline_files: dict[str, str] = field(default_factory=dict)  # path under IR_DATASETS_HOME -> mirror file
    beir_path: str | None = None  # a BEIR-layout folder or zip registered in ir_datasets as `name`

    def __post_init__(self):
        self.language = choice(Language, self.language, "dataset.language")
        if not self.doc_fields:
            raise UserError("dataset.doc_fields: name at least one document field")
        self.check_splits()

    @property
    def splits_in_folder(self) -> bool:
        """A BEIR folder whose configured splits are incomplete without its own (none given, or the test split or a
        sample's source not among them): the folder's splits, one per ``qrels/<split>.tsv``, are read with the
        folder and merged under the configured ones (``taskvec_ir.ir.splits.resolve_splits``; building a config
        reads no file)."""
        needed = {self.test_split} | {s.sample_of for s in self.splits.values() if isinstance(s, SampleSplit)}
        return bool(self.beir_path) and not needed <= set(self.splits)

    def check_splits(self, folder: list[str] | None = None) -> None:
        """Each split an ir_datasets id or a sample of one, and the test split among them. With a BEIR folder not
        yet read (``folder`` None), a split only its qrels files may give is checked once they are read
        (``folder``: the splits they gave)."""
        deferred = bool(self.beir_path) and folder is None
        for split, spec in list(self.splits.items()):
            key = f"dataset.splits.{split}"
            if isinstance(spec, Mapping):
                spec = self.splits[split] = parse(SampleSplit, spec, key)
            if isinstance(spec, SampleSplit):
                if not 0 < spec.fraction <= 1:
                    raise UserError(f"{key}.fraction: {spec.fraction} must lie in (0, 1]")
                source = self.splits.get(spec.sample_of)
                if source is None and folder is not None:
                    raise UserError(
                        f"{key}.sample_of: '{spec.sample_of}' is not a split of {self.name}: its folder "
                        f"{self.beir_path} has {', '.join(sorted(folder)) or 'none'} (one per qrels/<split>.tsv) "
                        f"and dataset.splits adds {', '.join(s for s in self.splits if s not in folder) or 'none'}"
                    )
                if not isinstance(source, str) and not (source is None and deferred):
                    raise UserError(f"{key}.sample_of: '{spec.sample_of}' must name a split given by an ir_datasets id")
            elif not isinstance(spec, str) or not spec:
                raise UserError(f"{key}: {spec!r} must be an ir_datasets id or {{sample_of, fraction, seed}}")
        # no splits: a corpus alone (e.g. to adapt on)
        if self.splits and self.test_split not in self.splits and not deferred:
            raise UserError(
                f"dataset.test_split: '{self.test_split}' is not in dataset.splits ({', '.join(self.splits) or 'none'})"
            )

    def tuning_split_overrides(self, name: str) -> list[str]:
        """Overrides that give the dataset a split ``name`` to tune on, held out from the test split: a 20% sample
        of a split of its own (SciFact's dev is one of train), or, where test is its only split, test's queries
        cut in two by a seed, one half to tune on and the other the test split (as ``dataset=cranfield_split``).
        ``++`` adds a key or sets it, whichever the config needs."""
        sources = [s for s, spec in self.splits.items() if isinstance(spec, str) and s not in (name, self.test_split)]
        if sources:
            source = "train" if "train" in sources else sources[0]
            return [f"++dataset.splits.{name}={{sample_of:{source},fraction:0.2,seed:42}}"]
        whole = self.splits.get(self.test_split)
        if not isinstance(whole, str):  # a test split that is itself a sample: nothing of its own to cut
            return [f"++dataset.splits.{name}=<an ir_datasets id of queries held out from {self.test_split}>"]
        pool = "all" if "all" not in self.splits else f"all_{self.test_split}"
        half = "fraction:0.5,seed:1"
        return [
            f"++dataset.splits.{pool}={whole}",
            f"++dataset.splits.{name}={{sample_of:{pool},{half}}}",
            f"++dataset.splits.{self.test_split}={{sample_of:{pool},{half},rest:true}}",
        ]

    def split(self, name: str) -> str | SampleSplit:
        """How ``splits`` defines ``name``; a clear error if it does not."""
        if self.splits_in_folder:
            raise RuntimeError("the splits of a BEIR folder are read first: taskvec_ir.ir.splits.resolve_splits")
        if name not in self.splits:
            raise UserError(
                f"dataset {self.name!r} has no split {name!r} in dataset.splits "
                f"(available: {', '.join(self.splits) or 'none'})"
            )
        return self.splits[name]
