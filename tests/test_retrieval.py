"""BM25 first stage: the analyzer per language, scores against rank_bm25 and the formula, Cranfield nDCG."""
import math
import os
from pathlib import Path

import pytest
import yaml
from rank_bm25 import BM25Okapi

from taskvec_ir import data
from taskvec_ir.retrieval import Analyzer, BM25Retriever, bm25_candidates, build_retriever

CONF = Path(__file__).resolve().parents[1] / "conf"


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
    assert run == pytest.approx({doc_id: s for doc_id, s in zip(CORPUS, reference) if s > 0})
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


def test_top_k_truncates_and_ties_follow_corpus_order():
    docs = {"b": "apple pie", "a": "apple pie", "c": "apple tart", "d": "pear", "e": "plum", "f": "fig", "g": "kiwi"}
    retriever = build_retriever(docs, "rank_bm25", ANALYZER)
    assert list(retriever.search({"q": "apple pie"}, top_k=3)["q"]) == ["b", "a", "c"]
    assert list(retriever.search({"q": "apple pie"}, top_k=2)["q"]) == ["b", "a"]
    assert list(retriever.search({"q": "apple"}, top_k=10)["q"]) == ["b", "a", "c"]
    assert list(retriever.search({"q": "apple"}, top_k=1)["q"]) == ["b"]


def test_query_without_tokens_gets_an_empty_result():
    assert BM25Retriever(CORPUS, ANALYZER).search({"q": "the and of", "r": ""}, top_k=5) == {"q": {}, "r": {}}


def test_bad_top_k_and_backend_are_clear_errors():
    with pytest.raises(ValueError, match="top_k"):
        BM25Retriever(CORPUS, ANALYZER).search({"q": "cat"}, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        bm25_candidates(CORPUS, {"q": "cat"}, top_k=-1)
    with pytest.raises(ValueError, match="known: rank_bm25"):
        build_retriever(CORPUS, "lucene", ANALYZER)


def test_cranfield_bm25_ndcg(mirror_dir):
    data.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    dataset = yaml.safe_load((CONF / "dataset" / "cranfield.yaml").read_text())
    data.place_offline_files(dataset, mirror_dir)
    settings = yaml.safe_load((CONF / "retriever" / "bm25.yaml").read_text())
    split = data.load_split(dataset, "test")

    run = bm25_candidates(data.load_docs(dataset), split.queries, language=dataset["language"], **settings)

    from ranx import Qrels, Run, evaluate

    ndcg = evaluate(Qrels(split.qrels), Run(run), "ndcg@10", make_comparable=True)
    print(f"Cranfield BM25 nDCG@10 = {ndcg:.4f}")
    assert 0.30 < ndcg < 0.45
    assert len(run) == 225 and max(len(docs) for docs in run.values()) == 100
