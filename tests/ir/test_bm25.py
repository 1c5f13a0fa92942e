"""BM25 scoring: the robertson variant's scores against rank_bm25 and the Okapi formula, Lucene's length norms,
and the settings the config refuses. The lucene variant's scores against Lucene itself: test_bm25_index.py."""

import math

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from taskvec_ir.config.retriever import AnalyzerConfig, RetrieverConfig
from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.bm25 import LUCENE_NORM_LENGTHS, BM25Retriever, lucene_norm, lucene_weight, ordered_ties
from taskvec_ir.ir.bm25_index import BM25Index, build_bm25_index
from taskvec_ir.ir.evaluation import evaluate_run

TEXTS = ["the cat sat on the mat", "a dog chased the cat around the garden", "dogs and cats and dogs", "gluons"]
CORPUS = {f"d{i}": text for i, text in enumerate([*TEXTS, "a cat a cat a cat"], start=1)}
ANALYZER = Analyzer("en", name="snowball")  # the robertson variant's analyzer


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


def test_norm_lengths_are_lucenes():
    # SmallFloat.byte4ToInt(SmallFloat.intToByte4(n)), printed by scripts/LuceneTokens.java norms (equal for
    # every n below 300,000).
    lengths = [0, 23, 24, 39, 40, 41, 42, 43, 100, 1000, 10000, 100000]
    expected = [0, 23, 24, 39, 40, 40, 42, 42, 96, 984, 9240, 98328]
    assert LUCENE_NORM_LENGTHS[lucene_norm(np.array(lengths))].tolist() == expected


def test_config_refuses_combinations_it_cannot_score():
    with pytest.raises(ValueError, match="retriever.bm25=robertson"):
        RetrieverConfig(backend="rank_bm25")
    with pytest.raises(ValueError, match="multifield .* needs"):
        RetrieverConfig(fields="multifield", bm25="robertson")
    with pytest.raises(ValueError, match="retriever.analyzer.name"):
        RetrieverConfig(analyzer=AnalyzerConfig(name="porter"))


def test_lucene_is_a_bm25_variant_not_a_backend():
    with pytest.raises(ValueError, match="retriever.backend: 'lucene' is not one of inverted_index, rank_bm25"):
        RetrieverConfig(backend="lucene")  # Lucene's BM25 is retriever.bm25=lucene, not a backend


def test_ties_keep_lucenes_order_where_trec_eval_reads_them():
    five, four = np.float32(5), np.float32(4)
    below = np.nextafter(five, np.float32(0))
    run = ordered_ties([("a", five), ("b", five), ("c", below), ("d", four)])
    # b is one float32 step below a; c, tied with b now, one more; d, untied, keeps Lucene's score
    assert run == {"a": 5.0, "b": float(below), "c": float(np.nextafter(below, np.float32(0))), "d": 4.0}
    assert all(type(score) is float for score in run.values())
    # trec_eval reads scores as float32 and ranks equal ones by descending id: a relevant "a" still ranks first
    assert evaluate_run({"q": {"a": 1}}, {"q": run}, ["ndcg@1"])[0]["ndcg@1"] == 1.0
    assert evaluate_run({"q": {"a": 1}}, {"q": {"a": 5.0, "b": 5.0}}, ["ndcg@1"])[0]["ndcg@1"] == 0.0


def test_a_repeated_query_term_is_one_clause_boosted_by_its_count(tmp_path):
    # As Anserini's bag of words: weight = 3 · idf in float32, not three term scores added.
    analyzer = Analyzer("en")
    docs = {"d1": "flow transfer heat", "d2": "heat flow", "d3": "transfer transfer", "d4": "wing"}
    build_bm25_index(docs.items(), analyzer, tmp_path)
    index = BM25Index(tmp_path, analyzer, k1=0.9, b=0.4)
    score = index.search({"q": "transfer transfer transfer"}, top_k=5)["q"]

    f32 = np.float32
    idf = f32(math.log(1 + (4 - 2 + 0.5) / (2 + 0.5)))  # 2 of the 4 documents hold "transfer"
    weight = f32(3) * idf
    average = f32(8 / 4)  # 3 + 2 + 2 + 1 tokens

    def by_hand(tf, length):
        norm_inverse = f32(1) / (f32(0.9) * ((f32(1) - f32(0.4)) + f32(0.4) * f32(length) / average))
        return float(weight - weight / (f32(1) + f32(tf) * norm_inverse))

    assert score == {"d3": by_hand(2, 2), "d1": by_hand(1, 3)}
    assert lucene_weight(3, idf) == weight
    # three clauses of weight idf would add up to another float32 here
    one_clause = idf - idf / (f32(1) + f32(2) * (f32(1) / (f32(0.9) * (f32(0.6) + f32(0.4) * f32(2) / average))))
    assert float(f32(3 * float(one_clause))) != score["d3"]
    assert index.score_text("transfer transfer transfer", docs["d3"]) == by_hand(2, 2)
