"""BM25 scoring: the robertson variant's scores against rank_bm25 and the Okapi formula, Lucene's length norms,
and the settings the config refuses. The lucene variant's scores against Lucene itself: test_bm25_index.py."""

import math

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from taskvec_ir.config.schema import AnalyzerConfig, RetrieverConfig
from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.bm25 import LUCENE_NORM_LENGTHS, BM25Retriever, lucene_norm

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


def test_the_replaced_backend_name_says_what_replaced_it():
    with pytest.raises(ValueError, match="retriever.backend=inverted_index"):
        RetrieverConfig(backend="bm25s")
    with pytest.raises(ValueError, match="retriever.backend: 'lucene' is not one of inverted_index, rank_bm25"):
        RetrieverConfig(backend="lucene")  # Lucene's BM25 is retriever.bm25=lucene, not a backend
