"""BM25 first stage: the analyzer per language, scores against rank_bm25 and the formula, the bm25s
backend against rank_bm25, Cranfield nDCG and backend agreement."""

import math
import os
import statistics
from collections import Counter
from pathlib import Path

import pytest
import yaml
from rank_bm25 import BM25Okapi

from taskvec_ir import data
from taskvec_ir.evaluation import evaluate_run
from taskvec_ir.retrieval import Analyzer, BM25Retriever, BM25SRetriever, bm25_candidates, build_retriever
from taskvec_ir.schema import CONFIG_DIR, DatasetConfig, RetrieverConfig, parse

CONF = Path(CONFIG_DIR)
BACKENDS = ["rank_bm25", "bm25s"]


@pytest.mark.parametrize(
    ("language", "text", "tokens"),
    [
        ("en", "The cats are running in the gardens", ["cat", "run", "garden"]),
        ("de", "Die Kinder spielen im Garten mit den Bällen", ["kind", "spiel", "gart", "ball"]),
        ("fr", "Les enfants jouent dans le jardin avec des ballons", ["enfant", "jouent", "jardin", "ballon"]),
        ("es", "Los niños corren en el parque con las pelotas", ["niñ", "corr", "parqu", "pelot"]),
    ],
)
def test_analyzer_drops_stopwords_and_stems(language, text, tokens):
    assert Analyzer(language)(text) == tokens


def test_analyzer_switches():
    text = "The Cats, running!"
    assert Analyzer("en", stopwords=False, stemmer=False)(text) == ["the", "cats", "running"]
    assert Analyzer("en", lowercase=False, stemmer=False)(text) == ["The", "Cats", "running"]
    assert Analyzer("en", stopwords=False)(text) == ["the", "cat", "run"]
    with pytest.raises(ValueError, match="dataset.language"):
        Analyzer("xx")


CORPUS = {
    "d1": "the cat sat on the mat",
    "d2": "a dog chased the cat around the garden",
    "d3": "dogs and cats and dogs",
    "d4": "quantum chromodynamics of gluons",
    "d5": "a cat a cat a cat",
}
ANALYZER = Analyzer("en")


def test_scores_match_rank_bm25_and_the_okapi_formula():
    retriever = BM25Retriever(CORPUS, ANALYZER, k1=1.2, b=0.75)
    run = retriever.search({"q": "dog garden"}, top_k=10)["q"]

    tokenized = [ANALYZER(text) for text in CORPUS.values()]
    reference = BM25Okapi(tokenized, k1=1.2, b=0.75).get_scores(["dog", "garden"])
    assert run == pytest.approx({doc_id: s for doc_id, s in zip(CORPUS, reference, strict=True) if s > 0})
    assert all(type(score) is float for score in run.values())

    # By hand: "dog" is in d2 and d3 (n=2 of N=5), "garden" only in d2 (n=1).
    lengths = [len(tokens) for tokens in tokenized]
    average = sum(lengths) / len(lengths)

    def term(tf, n, length):
        idf = math.log((5 - n + 0.5) / (n + 0.5))
        return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * length / average))

    assert run["d2"] == pytest.approx(term(1, 2, lengths[1]) + term(1, 1, lengths[1]))
    assert run["d3"] == pytest.approx(term(2, 2, lengths[2]))
    assert list(run) == ["d2", "d3"]  # best first; documents without a query term are not returned


@pytest.mark.parametrize(
    "query", ["dog garden", "dogs chasing", "sat on a mat", "gluons and dogs", "garden garden dog"]
)
def test_bm25s_scores_and_order_equal_rank_bm25(query):
    # No query term is in more than half of CORPUS's documents: the one case where the backends differ
    # (next test). Elsewhere both compute BM25Okapi in float64, so scores agree to rounding.
    expected = BM25Retriever(CORPUS, ANALYZER, k1=1.2, b=0.75).search({"q": query}, top_k=3)["q"]
    run = BM25SRetriever(CORPUS, ANALYZER, k1=1.2, b=0.75).search({"q": query}, top_k=3)["q"]
    assert list(run) == list(expected)
    assert run == pytest.approx(expected, rel=1e-12)
    assert all(type(score) is float for score in run.values())


def test_bm25s_gives_terms_in_most_documents_no_weight():
    # "cat" is in 4 of the 5 documents: Robertson's idf floors it at 0 in bm25s, where rank_bm25 gives it
    # 0.25 x the corpus's mean idf.
    assert BM25SRetriever(CORPUS, ANALYZER).search({"q": "cat"}, top_k=5) == {"q": {}}
    assert list(BM25SRetriever(CORPUS, ANALYZER).search({"q": "cat garden"}, top_k=5)["q"]) == ["d2"]
    assert len(BM25Retriever(CORPUS, ANALYZER).search({"q": "cat"}, top_k=5)["q"]) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_top_k_truncates_and_ties_follow_corpus_order(backend):
    docs = {"b": "apple pie", "a": "apple pie", "c": "apple tart", "d": "pear", "e": "plum", "f": "fig", "g": "kiwi"}
    retriever = build_retriever(docs, backend, ANALYZER)
    assert list(retriever.search({"q": "apple pie"}, top_k=3)["q"]) == ["b", "a", "c"]
    assert list(retriever.search({"q": "apple pie"}, top_k=2)["q"]) == ["b", "a"]
    assert list(retriever.search({"q": "apple"}, top_k=10)["q"]) == ["b", "a", "c"]
    assert list(retriever.search({"q": "apple"}, top_k=1)["q"]) == ["b"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_queries_without_known_tokens_get_an_empty_result(backend):
    retriever = build_retriever(CORPUS, backend, ANALYZER)
    assert retriever.search({"q": "the and of", "r": "", "s": "zebra"}, top_k=5) == {"q": {}, "r": {}, "s": {}}


@pytest.mark.parametrize("backend", BACKENDS)
def test_documents_without_tokens_are_indexed_but_never_returned(backend):
    # bm25s guesses its input's kind from the first document: an empty one must not confuse it.
    retriever = build_retriever({"e": "the of", "x": "apple pie", "y": "pear"}, backend, ANALYZER)
    assert list(retriever.search({"q": "apple"}, top_k=3)["q"]) == ["x"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_top_k_and_empty_corpus_are_clear_errors(backend):
    with pytest.raises(ValueError, match="top_k"):
        build_retriever(CORPUS, backend, ANALYZER).search({"q": "cat"}, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        bm25_candidates(CORPUS, {"q": "cat"}, RetrieverConfig(top_k=-1, backend=backend))
    with pytest.raises(ValueError, match="empty corpus"):
        build_retriever({}, backend, ANALYZER)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="known: bm25s, rank_bm25"):
        build_retriever(CORPUS, "lucene", ANALYZER)


@pytest.fixture(scope="module")
def cranfield(mirror_dir):
    """Cranfield's config, documents and test split, placed from the offline mirror."""
    data.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    dataset = parse(DatasetConfig, yaml.safe_load((CONF / "dataset" / "cranfield.yaml").read_text()), "dataset")
    data.place_offline_files(dataset, mirror_dir)
    return dataset, data.load_docs(dataset), data.load_split(dataset, "test")


def test_cranfield_bm25_ndcg(cranfield):
    dataset, docs, split = cranfield
    settings = parse(RetrieverConfig, yaml.safe_load((CONF / "retriever" / "bm25.yaml").read_text()), "retriever")

    run = bm25_candidates(docs, split.queries, settings, dataset.language)

    ndcg = evaluate_run(split.qrels, run, ["ndcg@10"])[0]["ndcg@10"]
    print(f"Cranfield BM25 nDCG@10 = {ndcg:.4f}")
    assert 0.30 < ndcg < 0.45
    assert len(run) == 225 and max(len(docs) for docs in run.values()) == 100


def test_cranfield_backends_agree(cranfield):
    dataset, docs, split = cranfield
    analyzer = Analyzer(dataset.language)
    runs = {backend: build_retriever(docs, backend, analyzer).search(split.queries, 100) for backend in BACKENDS}
    reference, run = runs["rank_bm25"], runs["bm25s"]

    # The backends differ only on terms in more than half of the documents (Cranfield has one, "flow",
    # in 54 of 225 queries): elsewhere the top 100s are the same lists with the same scores.
    document_frequency = Counter(token for text in docs.values() for token in set(analyzer(text)))
    majority_terms = {token for token, count in document_frequency.items() if count > len(docs) / 2}
    plain = [q for q, text in split.queries.items() if not majority_terms.intersection(analyzer(text))]
    assert len(plain) > 150
    for query_id in plain:
        assert list(run[query_id]) == list(reference[query_id])
        assert run[query_id] == pytest.approx(reference[query_id], rel=1e-9)

    # Overall: 0.959 measured; lucene's idf, the alternative, gives 0.924.
    overlap = statistics.mean(len(set(list(run[q])[:10]) & set(list(reference[q])[:10])) / 10 for q in reference)
    assert overlap >= 0.95
