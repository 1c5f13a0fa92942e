import json

import pytest

from taskvec_ir.storage.cache import Cache, cache_key, checkpoint_fingerprint, text_digest

BASE = dict(
    dataset={"docs": "beir/scifact", "doc_fields": ["title", "text"]},
    queries="abc",
    retriever={"top_k": 100, "k1": 1.2, "b": 0.75, "analyzer": {"stemmer": True}},
)


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p["dataset"].update(docs="beir/nfcorpus"),
        lambda p: p["dataset"].update(doc_fields=["text"]),
        lambda p: p.update(queries="abd"),
        lambda p: p["retriever"].update(top_k=99),
        lambda p: p["retriever"].update(k1=0.9),
        lambda p: p["retriever"]["analyzer"].update(stemmer=False),
        lambda p: p.update(alpha=0.5),
    ],
)
def test_any_change_of_input_changes_the_key(change):
    parts = json.loads(json.dumps(BASE))
    change(parts)
    assert cache_key(**parts) != cache_key(**BASE)


def test_key_ignores_mapping_order():
    assert cache_key(a=1, b={"x": 1, "y": 2}) == cache_key(b={"y": 2, "x": 1}, a=1)
    assert text_digest({"q1": "a", "q2": "b"}) == text_digest({"q2": "b", "q1": "a"})
    assert text_digest({"q1": "a"}) != text_digest({"q1": "b"})


def test_checkpoint_fingerprint_follows_the_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "config.json").write_text("{}")
    before = checkpoint_fingerprint(tmp_path)
    (tmp_path / "config.json").write_text('{"a": 1}')
    assert checkpoint_fingerprint(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"y" * 11)
    assert checkpoint_fingerprint(tmp_path) != before


def test_hit_miss_and_no_temporary_files(tmp_path):
    cache, calls = Cache(tmp_path), []
    compute = lambda: calls.append(1) or {"q": {"d": 1.5}}  # noqa: E731
    assert cache.json("scores", "k", compute) == {"q": {"d": 1.5}}
    assert cache.json("scores", "k", compute) == {"q": {"d": 1.5}}
    assert len(calls) == 1 and cache.stats == {"scores.miss": 1, "scores.hit": 1}
    assert [p.name for p in (tmp_path / "scores").iterdir()] == ["k.json"]


def test_disabled_cache_always_computes(tmp_path):
    cache, calls = Cache(None), []
    cache.json("scores", "k", lambda: calls.append(1))
    cache.json("scores", "k", lambda: calls.append(1))
    assert len(calls) == 2
