"""Pseudo-queries on real Cranfield and on an untitled, unpunctuated BEIR folder: each has the rest of its source
document as its one relevant candidate, scored as BM25 would score that document."""

import json

import numpy as np
import pytest

from taskvec_ir.ir import documents
from taskvec_ir.ir.bm25 import BM25Retriever
from taskvec_ir.ir.bm25_index import BM25Index
from taskvec_ir.ir.pairs import SPAN_WORDS
from taskvec_ir.pipeline.selection.methods import choose
from taskvec_ir.pipeline.selection.pseudo_queries import REST, pseudo_queries
from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import open_pipeline


@pytest.mark.parametrize(
    "backend, scoring", [("inverted_index", "lucene"), ("inverted_index", "robertson"), ("rank_bm25", "robertson")]
)
def test_a_text_scores_as_the_same_document_of_the_corpus_would(cranfield_grid, backend, scoring):
    """score_text is the retriever's own BM25: a corpus document's text gets the score search gives it."""
    pipeline = open_pipeline(
        cranfield_grid("selection=nqc", f"retriever.backend={backend}", f"retriever.bm25={scoring}")
    )
    bm25 = pipeline.first_stage.bm25()
    query = "boundary layer flow over a flat plate with heat transfer"
    found = bm25.search({"q": query}, 5)["q"]
    texts = documents.doc_texts(pipeline.spec.dataset, found)
    for doc_id, score in found.items():
        assert bm25.score_text(query, texts[doc_id]) == pytest.approx(score, rel=1e-9)
    assert bm25.score_text(query, "nothing in common") == 0.0
    assert isinstance(bm25, BM25Index if backend == "inverted_index" else BM25Retriever)


def test_pseudo_queries_have_the_rest_of_their_source_as_their_one_relevant_candidate(cranfield_grid):
    pipeline = open_pipeline(cranfield_grid("selection=pseudo_queries"))
    name, source = pseudo_queries(pipeline, pseudo_query_settings := cranfield_grid().selection.pseudo_queries)
    assert pseudo_query_settings.source == "auto" and source == "title"  # Cranfield's documents have titles
    split, candidates, texts = pipeline.split(name), pipeline.candidates(name), pipeline.texts(name)
    assert 20 <= len(split.queries) <= pseudo_query_settings.count
    found = 0
    for query_id, text in split.queries.items():
        (relevant,) = split.qrels[query_id]
        source = relevant.split(REST)[0]
        assert source not in candidates[query_id]  # the source only as its rest, which lacks the query
        assert text not in texts[relevant] and len(texts[relevant].split()) > len(text.split())
        assert len(candidates[query_id]) <= 10 and all(d in texts for d in candidates[query_id])
        found += relevant in candidates[query_id]
    assert found >= 0.8 * len(split.queries)  # a title's words are in its paper: BM25 finds most of them
    again = open_pipeline(cranfield_grid("selection=pseudo_queries"))  # cached: the same queries, no corpus pass
    assert pseudo_queries(again, pseudo_query_settings) == (name, "title")
    assert again.candidates(name) == candidates and again.cache.stats["pseudo_queries.hit"] == 1


def untitled_beir(folder):
    """A BEIR-layout collection as preprocessed corpora are: no title, lowercased, no punctuation at all."""
    rng = np.random.default_rng(0)
    vocabulary = [f"{stem}{i}" for stem in ("flow", "wing", "heat", "shock", "plate") for i in range(40)]
    folder.mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choice(vocabulary, size=35 + i % 7))} for i in range(60)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": f"q{i}", "text": " ".join(rng.choice(vocabulary, size=5))} for i in range(6)]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels").mkdir()
    qrels = "".join(f"q{i}\td{i}\t1\n" for i in range(6))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return {d["_id"]: d["text"] for d in docs}


def test_pseudo_queries_default_to_word_spans_where_documents_have_no_title_and_no_punctuation(triple, tmp_path):
    texts = untitled_beir(tmp_path / "untitled")

    def config(*overrides):
        return compose(
            [
                "dataset=beir",
                "dataset.name=untitled",
                f"dataset.beir_path={tmp_path / 'untitled'}",
                "retriever.top_k=5",
                f"cache.dir={tmp_path / 'cache'}",
                "model.scorer.show_progress=false",
                *(f"model.{role}={path}" for role, path in triple.items()),
                "selection=pseudo_queries",
                "selection.alphas=[0.0,0.5,1.0]",
                "selection.pseudo_queries.count=20",
                *overrides,
            ]
        )

    for explicit in ("title", "sentence"):  # what the default (title) did before: no pair of either kind
        with pytest.raises(ValueError, match=f"selection.pseudo_queries.source: the documents give no {explicit}"):
            pseudo_queries(
                open_pipeline(config()),
                config(f"selection.pseudo_queries.source={explicit}").selection.pseudo_queries,
            )
    cfg = config()
    pipeline = open_pipeline(cfg)
    choice = choose(pipeline, cfg)
    assert choice.details == {"pseudo_queries_source": "span"} and "(span)" in choice.criterion
    name, _ = pseudo_queries(pipeline, cfg.selection.pseudo_queries)  # the split the choice was made on (cached)
    split = pipeline.split(name)
    assert len(split.queries) == 20
    for query_id, query in split.queries.items():
        (relevant,) = split.qrels[query_id]
        source, span = relevant.split(REST)
        words = texts[source].split()
        start = int(span) * SPAN_WORDS  # the span's index in its document's pieces of SPAN_WORDS words
        assert query.split() == words[start : start + SPAN_WORDS]
        rest = words[:start] + words[start + SPAN_WORDS :]
        assert pipeline.texts(name)[relevant].split() == rest
    assert choice.alpha in (0.0, 0.5, 1.0) and len(choice.curve) == 3 * len(cfg.lam.grid)
    assert choice.describe()["pseudo_queries_source"] == "span"
