"""The ``retriever`` key (``conf/retriever/``): the first stage, BM25 over the corpus (Lucene's by default, as
Anserini's BEIR baselines) or an existing run file, and ``retriever=dense``'s end-to-end dense retrieval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from taskvec_ir.config.checks import Choice, choice, positive
from taskvec_ir.errors import UserError

# retriever.backend: an index on disk built once per corpus (memory-mapped: millions of passages), rank_bm25's
# in-memory BM25Okapi (the robertson variant's legacy reference), or a TREC run file.
Backend = Choice("Backend", ["inverted_index", "rank_bm25", "run_file"])

# retriever.bm25: Lucene's BM25 (idf log(1 + (N − df + .5)/(df + .5)), one-byte length norms), or this project's
# former variant, the Robertson idf floored at 0 (retriever=bm25_robertson).
Scoring = Choice("Scoring", ["lucene", "robertson"])

# retriever.fields: dataset.doc_fields joined into one (Anserini's BeirFlatCollection), or one index per field,
# scores summed (BeirMultifieldCollection).
FieldModel = Choice("FieldModel", ["flat", "multifield"])

# retriever.analyzer.name: Lucene's analyzer for the language, or \w+ words, bm25s's stopword lists and
# Snowball stems (this project's former analyzer).
AnalyzerName = Choice("AnalyzerName", ["lucene", "snowball"])

# retriever.index (retriever=dense): exact search, an HNSW index (faiss), or auto by corpus size.
DenseIndex = Choice("DenseIndex", ["auto", "exact", "faiss"])

# Plain strings for the retrieval functions' own checks: Python 3.11's `in` on an Enum class refuses a str.
ANALYZERS, SCORINGS = tuple(AnalyzerName), tuple(Scoring)


@dataclass
class AnalyzerConfig:
    """How text becomes terms; the language comes from ``dataset.language``."""

    name: AnalyzerName = AnalyzerName.lucene
    lowercase: bool = True
    stopwords: bool = True
    stemmer: bool = True


@dataclass
class RetrieverConfig:
    """The first stage: BM25 over the corpus, or an existing run file (``backend: run_file``, ``path``)."""

    backend: Backend = Backend.inverted_index
    top_k: int = 100  # candidates re-ranked per query
    bm25: Scoring = Scoring.lucene
    fields: FieldModel = FieldModel.flat
    # Anserini's defaults and its BEIR regressions' settings, so that the BM25 row is the number they publish; not
    # tuned per dataset (Lucene's and Elasticsearch's own defaults are 1.2/0.75).
    k1: float = 0.9
    b: float = 0.4
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    path: str | None = None  # run_file: the TREC run whose candidates are re-ranked
    # retriever=dense: every model system ranks the whole corpus by its own embeddings (bi-encoders), no candidates
    # and no fusion; the settings above still make the bm25 row.
    dense: bool = False
    index: DenseIndex = DenseIndex.auto

    # Keys that do not change BM25's candidates (kept out of their cache key: dense runs share them).
    NOT_IN_CANDIDATES: ClassVar[tuple[str, ...]] = ("dense", "index")

    def __post_init__(self):
        self.backend = choice(Backend, self.backend, "retriever.backend")
        self.bm25 = choice(Scoring, self.bm25, "retriever.bm25")
        self.fields = choice(FieldModel, self.fields, "retriever.fields")
        self.analyzer.name = choice(AnalyzerName, self.analyzer.name, "retriever.analyzer.name")
        self.index = choice(DenseIndex, self.index, "retriever.index")
        if self.backend == Backend.rank_bm25 and self.bm25 != Scoring.robertson:
            raise UserError(
                "retriever.backend=rank_bm25 scores with rank_bm25's BM25Okapi, the robertson variant's legacy "
                "reference: add retriever.bm25=robertson, or use retriever.backend=inverted_index for Lucene's BM25"
            )
        if self.fields == FieldModel.multifield and (
            self.backend != Backend.inverted_index or self.bm25 != Scoring.lucene
        ):
            raise UserError(
                "retriever.fields=multifield sums Lucene BM25 scores of per-field indexes: it needs "
                "retriever.backend=inverted_index and retriever.bm25=lucene"
            )
        positive(self.top_k, "retriever.top_k")
        if not self.k1 >= 0 or not 0 <= self.b <= 1:
            raise UserError(f"retriever.k1 and retriever.b: {self.k1}, {self.b} must be k1 ≥ 0 and b in [0, 1]")
        if self.backend == Backend.run_file and self.path is None:
            raise UserError("retriever=run_file needs the run to re-rank: add retriever.path=<TREC run file>")
        if self.backend != Backend.run_file and self.path is not None:
            raise UserError(
                f"retriever.path is read only by retriever=run_file, and the retriever is {self.backend}: "
                "use retriever=run_file retriever.path=<TREC run file>"
            )

    def identity(self) -> dict:
        """The settings that determine the candidates (their cache key); for a run file, its path, whose content
        ``taskvec_ir.pipeline.first_stage.retriever_identity`` puts in its place."""
        if self.backend == Backend.run_file:
            return {"backend": self.backend, "top_k": self.top_k, "path": self.path}
        return {k: v for k, v in asdict(self).items() if k not in self.NOT_IN_CANDIDATES}
