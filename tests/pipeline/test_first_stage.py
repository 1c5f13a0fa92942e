"""What identifies a first stage's candidates in cache keys, and what a reader of its split's means must be told."""

import logging

import pytest

from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.ir.splits import Split
from taskvec_ir.pipeline.first_stage import FirstStage, retriever_identity
from taskvec_ir.runs.compose import compose
from taskvec_ir.storage.cache import Cache, cache_key


def test_a_run_files_content_is_its_identity(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run file at .*absent.trec: fix retriever.path"):
        retriever_identity(RetrieverConfig(backend="run_file", path=str(tmp_path / "absent.trec")))
    first = tmp_path / "run.trec"
    first.write_text("q1 Q0 d1 1 2.0 es\n")
    copy = tmp_path / "copy.trec"
    copy.write_bytes(first.read_bytes())
    identity = retriever_identity(RetrieverConfig(backend="run_file", path=str(first)))
    assert identity == retriever_identity(RetrieverConfig(backend="run_file", path=str(copy)))  # moved: same key
    first.write_text("q1 Q0 d1 1 2.5 es\n")
    assert retriever_identity(RetrieverConfig(backend="run_file", path=str(first))) != identity


def test_a_first_stages_identity_is_the_key_its_candidates_were_cached_under(tmp_path):
    """Computed on main before the identity moved out of the config (commit 227fe8e): cached candidates keep
    their keys."""
    run = tmp_path / "run.trec"
    run.write_text("1 Q0 d1 1 2.0 x\n")
    found = cache_key(retriever=retriever_identity(RetrieverConfig(backend="run_file", path=str(run))))
    assert found == "db09776b04807cafb222032aa6a4c373"
    assert cache_key(retriever=retriever_identity(RetrieverConfig())) == "3912b1700aaaa924904f1db7fc5809b3"
    dense = RetrieverConfig(dense=True, index="faiss")  # dense runs share BM25's candidates
    assert retriever_identity(dense) == retriever_identity(RetrieverConfig())


MEASURES = ["ndcg@10", "precision@10", "precision@5", "recall@100", "Judged@10", "map@100", "hit_rate@20", "mrr"]


def test_warnings_name_the_queries_that_score_zero_and_the_measures_the_depth_limits(tmp_path, caplog):
    """Query 4 has no text, 3 no candidates, 2 only judgements of grade 0; with BM25's top 10 re-ranked, the
    measures of a set cut at 10 or deeper cannot move, and those cut beyond 10 see 10 documents."""
    dataset = compose(["dataset=cranfield"]).dataset
    queries = {"1": "boundary layer", "2": "shock wave", "3": "of the"}
    qrels = {"1": {"d1": 1, "d2": 0}, "2": {"d1": 0, "d3": 0}, "3": {"d4": 2}, "4": {"d1": 1}}
    candidates = {"1": {"d1": 1.0, "d2": 0.5}, "2": {"d2": 1.0}, "3": {}}
    reranked = FirstStage(dataset, RetrieverConfig(top_k=10), Cache(tmp_path))
    reranked.add_split("s", Split(queries, qrels), candidates)
    with caplog.at_level(logging.WARNING):
        found = reranked.warnings("s", MEASURES)
    assert found == {
        "no_text": ["4"],
        "no_candidates": ["3"],
        "no_relevant": ["2"],
        "unmoved_by_reranking": ["precision@10", "recall@100", "Judged@10", "hit_rate@20"],
        "beyond_top_k": ["recall@100", "map@100", "hit_rate@20"],
    }
    assert "1 of its 4 judged queries score 0 on every system (no relevant): 2" in caplog.text
    assert "precision@10, recall@100, Judged@10, hit_rate@20 cannot change under re-ranking" in caplog.text
    # a dense retriever ranks the corpus itself: every measure can move, but none sees beyond its top 10
    dense = FirstStage(dataset, RetrieverConfig(dense=True, index="faiss", top_k=10), Cache(tmp_path))
    dense.add_split("s", Split(queries, qrels), candidates)
    assert "unmoved_by_reranking" not in dense.warnings("s", MEASURES)
    deeper = FirstStage(dataset, RetrieverConfig(top_k=100), Cache(tmp_path))
    deeper.add_split("s", Split(queries, qrels), candidates)
    assert deeper.warnings("s", MEASURES)["unmoved_by_reranking"] == ["recall@100"]
    assert "beyond_top_k" not in deeper.warnings("s", MEASURES)
