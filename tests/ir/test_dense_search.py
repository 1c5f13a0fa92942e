import json

import numpy as np
import pytest

from taskvec_ir.ir import dense_search


def docs_and_vectors(count: int, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(count)]
    return ids, vectors


def store(folder, ids, vectors, calls=None):
    """Write ``vectors`` as the embeddings of ``ids``: the encoder looks each text (an id) up."""
    row = {doc_id: i for i, doc_id in enumerate(ids)}

    def encode(texts):
        if calls is not None:
            calls.append(len(texts))
        return vectors[[row[t] for t in texts]]

    return dense_search.write_embeddings(((doc_id, doc_id) for doc_id in ids), encode, folder)


def test_exact_search_across_chunks_equals_a_full_matrix_product(tmp_path, monkeypatch):
    monkeypatch.setattr(dense_search, "CHUNK_DOCS", 64)
    monkeypatch.setattr(dense_search, "QUERY_BLOCK", 3)  # query blocks too
    ids, vectors = docs_and_vectors(300)
    assert store(tmp_path, ids, vectors) == 300 and len(list(tmp_path.glob("chunk-*.npy"))) == 5
    queries = np.random.default_rng(1).standard_normal((7, 16)).astype(np.float32)
    found = dense_search.exact_search(tmp_path, queries, 10)
    scores = queries @ vectors.T
    for q, ranking in enumerate(found):
        expected = np.argsort(-scores[q])[:10]
        assert list(ranking) == [ids[i] for i in expected]
        assert list(ranking.values()) == pytest.approx(scores[q, expected].tolist(), abs=1e-6)


def test_an_encoding_cut_short_resumes_at_its_first_missing_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(dense_search, "CHUNK_DOCS", 50)
    ids, vectors = docs_and_vectors(180)

    def crash_on_third_chunk(texts, seen=[]):  # noqa: B006 - counts calls across the one run
        seen.append(texts)
        if len(seen) == 3:
            raise RuntimeError("killed")
        return vectors[[ids.index(t) for t in texts]]

    with pytest.raises(RuntimeError):
        dense_search.write_embeddings(((d, d) for d in ids), crash_on_third_chunk, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "chunk-000000.npy", "chunk-000001.npy", "ids-000000.json", "ids-000001.json"
    ]  # fmt: skip
    calls = []
    assert store(tmp_path, ids, vectors, calls) == 180
    assert calls == [50, 30]  # chunks 2 and 3 only
    stored = np.concatenate([v for _, v in dense_search.chunks(tmp_path)])
    assert np.array_equal(stored, vectors)
    # a chunk whose ids changed (another corpus order) is encoded again
    (tmp_path / "ids-000000.json").write_text(json.dumps(ids[1:51]))
    calls.clear()
    store(tmp_path, ids, vectors, calls)
    assert calls == [50]


def test_faiss_hnsw_finds_what_exact_search_finds(tmp_path):
    ids, vectors = docs_and_vectors(2000, dim=32)
    store(tmp_path / "embeddings", ids, vectors)
    (tmp_path / "index").mkdir()
    dense_search.FaissIndex.build(tmp_path / "embeddings", tmp_path / "index")
    queries = np.random.default_rng(2).standard_normal((40, 32)).astype(np.float32)
    approximate = dense_search.FaissIndex(tmp_path / "index").search(queries, 10)
    exact = dense_search.exact_search(tmp_path / "embeddings", queries, 10)
    # random 32-dimensional vectors are HNSW's hard case; at efSearch 256 over 2,000 it misses almost nothing
    assert dense_search.recall(approximate, exact) >= 0.99
    for a, e in zip(approximate, exact, strict=True):
        for doc in a.keys() & e.keys():
            assert a[doc] == pytest.approx(e[doc], abs=1e-5)
