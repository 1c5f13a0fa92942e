"""What identifies a first stage's candidates in cache keys."""

import pytest

from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.pipeline.first_stage import retriever_identity
from taskvec_ir.storage.cache import cache_key


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
