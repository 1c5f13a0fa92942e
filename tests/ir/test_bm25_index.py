"""The on-disk BM25 index: the robertson variant against bm25s (the in-memory backend it replaced: identical runs)
and rank_bm25; the lucene variant, flat and multifield, against Anserini (a committed reference run, checked
without Java, and a live Anserini run where Java 21+ and Anserini's fatjar are present)."""

import gzip
import json
import os
import statistics
import zipfile
from collections import Counter
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import yaml

from taskvec_ir.config.checks import parse
from taskvec_ir.config.composed import CONFIG_DIR
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.ir import documents, irds, splits
from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.bm25 import BM25Retriever, ordered_ties
from taskvec_ir.ir.bm25_index import BM25Index, FieldsBM25, build_bm25_index
from taskvec_ir.ir.evaluation import evaluate_run

CONF = Path(CONFIG_DIR)
TESTS = Path(__file__).parent
CORPUS = {
    "d1": "the cat sat on the mat",
    "d2": "a dog chased the cat around the garden",
    "d3": "dogs and cats and dogs",
    "d4": "quantum chromodynamics of gluons",
    "d5": "a cat a cat a cat",
}
ANALYZER = Analyzer("en", name="snowball")  # the robertson variant's tests: its analyzer and scoring


def index(
    tmp_path: Path, docs: dict[str, str], analyzer: Analyzer = ANALYZER, chunk_docs: int = 3, **bm25
) -> BM25Index:
    folder = tmp_path / f"index-{len(list(tmp_path.iterdir()))}"
    build_bm25_index(docs.items(), analyzer, folder, chunk_docs=chunk_docs)
    return BM25Index(folder, analyzer, **({"k1": 1.2, "b": 0.75, "scoring": "robertson"} | bm25))


def bm25s_run(docs: dict[str, str], queries: dict[str, str], analyzer: Analyzer, top_k: int, k1=1.2, b=0.75):
    """The run of this project's former backend, exactly as it was built and searched: bm25s in memory."""
    import bm25s

    retriever = bm25s.BM25(k1=k1, b=b, method="robertson", dtype="float64", backend="numpy")
    retriever.index([analyzer(text) for text in docs.values()], create_empty_token=False, show_progress=False)
    doc_ids, run = list(docs), {}
    for query_id, text in queries.items():
        token_ids = retriever.get_tokens_ids(analyzer(text))
        scores = retriever.get_scores_from_ids(token_ids) * (k1 + 1) if token_ids else np.zeros(len(docs))
        order = np.lexsort((np.arange(len(scores)), -scores))
        run[query_id] = {doc_ids[i]: float(scores[i]) for i in order[:top_k] if scores[i] > 0}
    return run


@pytest.mark.parametrize(
    "query", ["dog garden", "dogs chasing", "sat on a mat", "gluons and dogs", "garden garden dog"]
)
def test_index_scores_and_order_equal_rank_bm25(tmp_path, query):
    # No query term is in more than half of CORPUS's documents: the one case where the two differ (next
    # test). Elsewhere both compute BM25Okapi in float64, so scores agree to rounding.
    expected = BM25Retriever(CORPUS, ANALYZER, k1=1.2, b=0.75).search({"q": query}, top_k=3)["q"]
    run = index(tmp_path, CORPUS).search({"q": query}, top_k=3)["q"]
    assert list(run) == list(expected)
    assert run == pytest.approx(expected, rel=1e-12)
    assert all(type(score) is float for score in run.values())


def test_index_gives_terms_in_most_documents_no_weight(tmp_path):
    # "cat" is in 4 of the 5 documents: Robertson's idf floors it at 0, where rank_bm25 gives it 0.25 x the
    # corpus's mean idf.
    assert index(tmp_path, CORPUS).search({"q": "cat"}, top_k=5) == {"q": {}}
    assert list(index(tmp_path, CORPUS).search({"q": "cat garden"}, top_k=5)["q"]) == ["d2"]
    assert len(BM25Retriever(CORPUS, ANALYZER).search({"q": "cat"}, top_k=5)["q"]) == 4


def test_index_does_not_depend_on_how_the_corpus_is_chunked(tmp_path):
    for chunk_docs in (1, 2, 1000):
        build_bm25_index(CORPUS.items(), ANALYZER, tmp_path / str(chunk_docs), chunk_docs=chunk_docs)
    for name in ("postings_offsets.npy", "postings_docs.npy", "postings_tf.npy", "doc_lengths.npy", "terms.bin"):
        first, *others = ((tmp_path / str(c) / name).read_bytes() for c in (1, 2, 1000))
        assert all(other == first for other in others), name
    assert not (tmp_path / "1" / "chunks").exists()  # the build's temporary postings are gone
    assert {p.name for p in (tmp_path / "1").iterdir()} >= {"meta.json", "doc_ids.bin", "postings_tf.npy"}


def test_index_keeps_term_frequencies_so_k1_and_b_are_search_settings(tmp_path):
    build_bm25_index(CORPUS.items(), ANALYZER, tmp_path / "i")
    for k1, b in [(0.9, 0.4), (2.0, 1.0), (1.2, 0.0)]:
        run = BM25Index(tmp_path / "i", ANALYZER, k1=k1, b=b, scoring="robertson").search(
            {"q": "dogs garden"}, top_k=5
        )["q"]
        expected = BM25Retriever(CORPUS, ANALYZER, k1=k1, b=b).search({"q": "dogs garden"}, top_k=5)["q"]
        assert run == pytest.approx(expected, rel=1e-12)


def test_index_reads_unicode_terms_and_ids(tmp_path):
    docs = {"é-1": "Les enfants jouent au jardin", "ü/2": "Die Kinder spielen im Garten", "数3": "日本語 テキスト"}
    french = index(tmp_path, docs, Analyzer("fr", name="snowball"))
    assert list(french.search({"q": "jardins"}, top_k=3)["q"]) == ["é-1"]
    assert list(french.search({"q": "日本語"}, top_k=3)["q"]) == ["数3"]
    assert french.term_id("zzz") is None and french.term_id("jardin") is not None


def test_top_k_truncates_and_ties_follow_corpus_order(tmp_path):
    docs = {"b": "apple pie", "a": "apple pie", "c": "apple tart", "d": "pear", "e": "plum", "f": "fig", "g": "kiwi"}
    for retriever in (index(tmp_path, docs), BM25Retriever(docs, ANALYZER)):
        assert list(retriever.search({"q": "apple pie"}, top_k=3)["q"]) == ["b", "a", "c"]
        assert list(retriever.search({"q": "apple pie"}, top_k=2)["q"]) == ["b", "a"]
        assert list(retriever.search({"q": "apple"}, top_k=10)["q"]) == ["b", "a", "c"]
        assert list(retriever.search({"q": "apple"}, top_k=1)["q"]) == ["b"]


def test_queries_without_known_tokens_get_an_empty_result(tmp_path):
    for retriever in (index(tmp_path, CORPUS), BM25Retriever(CORPUS, ANALYZER)):
        assert retriever.search({"q": "the and of", "r": "", "s": "zebra"}, top_k=5) == {"q": {}, "r": {}, "s": {}}


def test_documents_without_tokens_are_indexed_but_never_returned(tmp_path):
    docs = {"e": "the of", "x": "apple pie", "y": "pear", "z": ""}
    for retriever in (index(tmp_path, docs, chunk_docs=1), BM25Retriever(docs, ANALYZER)):
        assert list(retriever.search({"q": "apple"}, top_k=3)["q"]) == ["x"]
    assert index(tmp_path, docs).meta["documents"] == 4


def test_bad_top_k_empty_corpus_and_bad_ids_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="top_k"):
        index(tmp_path, CORPUS).search({"q": "cat"}, top_k=0)
    with pytest.raises(ValueError, match="empty corpus"):
        build_bm25_index([], ANALYZER, tmp_path / "empty")
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Retriever({}, ANALYZER)
    with pytest.raises(ValueError, match="line break"):
        build_bm25_index([("a\nb", "text")], ANALYZER, tmp_path / "bad")


@pytest.fixture(scope="module")
def collections(mirror_dir):
    """Cranfield's and SciFact's configs, documents and test splits, placed from the offline mirror."""
    irds.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    loaded = {}
    for name in ("cranfield", "scifact"):
        dataset = parse(DatasetConfig, yaml.safe_load((CONF / "dataset" / f"{name}.yaml").read_text()), "dataset")
        irds.place_offline_files(dataset, mirror_dir)
        loaded[name] = dataset, documents.load_docs(dataset), splits.load_split(dataset, "test")
    return loaded


@pytest.mark.parametrize("name", ["scifact", "cranfield"])
def test_index_runs_are_the_replaced_bm25s_backends_runs(collections, name, tmp_path):
    dataset, docs, split = collections[name]
    analyzer = Analyzer(dataset.language, name="snowball")
    build_bm25_index(iter(docs.items()), analyzer, tmp_path / "index", chunk_docs=500)
    run = BM25Index(tmp_path / "index", analyzer, k1=1.2, b=0.75, scoring="robertson").search(split.queries, 100)
    expected = bm25s_run(docs, split.queries, analyzer, 100)
    assert run == expected  # the same documents, in the same order, with the same float64 scores
    assert [list(ranking) for ranking in run.values()] == [list(ranking) for ranking in expected.values()]


def test_cranfield_bm25_ndcg(collections, tmp_path):
    dataset, docs, split = collections["cranfield"]
    settings = RetrieverConfig()  # retriever=bm25: the defaults
    analyzer = Analyzer.of(dataset.language, settings.analyzer)
    folder = tmp_path / "index"
    build_bm25_index(docs.items(), analyzer, folder)
    run = BM25Index(folder, analyzer, settings.k1, settings.b, settings.bm25).search(split.queries, settings.top_k)

    ndcg = evaluate_run(split.qrels, run, ["ndcg@10"])[0]["ndcg@10"]
    print(f"Cranfield BM25 nDCG@10 = {ndcg:.4f}")
    assert 0.30 < ndcg < 0.45
    assert len(run) == 225 and max(len(docs) for docs in run.values()) == 100


def test_cranfield_index_agrees_with_rank_bm25(collections, tmp_path):
    dataset, docs, split = collections["cranfield"]
    analyzer = Analyzer(dataset.language, name="snowball")
    run = index(tmp_path, docs, analyzer, chunk_docs=20_000).search(split.queries, 100)
    reference = BM25Retriever(docs, analyzer).search(split.queries, 100)

    # They differ only on terms in more than half of the documents (Cranfield has one, "flow", in 54 of 225
    # queries): elsewhere the top 100s are the same lists with the same scores.
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


# -- the lucene variant against Lucene ---------------------------------------------------------------------------
REFERENCE = json.loads((TESTS / "anserini_scifact_top10.json").read_text())


@pytest.fixture(scope="module")
def scifact(mirror_dir):
    """SciFact's config and documents' fields, placed from the offline mirror."""
    irds.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    dataset = parse(DatasetConfig, yaml.safe_load((CONF / "dataset" / "scifact.yaml").read_text()), "dataset")
    irds.place_offline_files(dataset, mirror_dir)
    return dataset, documents.load_doc_fields(dataset)


def our_runs(tmp_path: Path, fields: dict[str, dict[str, str]], queries: dict[str, str], top_k: int) -> dict:
    analyzer = Analyzer("en")

    def index(field_names: list[str]) -> BM25Index:
        folder = tmp_path / "+".join(field_names)
        texts = ((doc_id, "\n".join(values[f] for f in field_names)) for doc_id, values in fields.items())
        build_bm25_index(texts, analyzer, folder)
        return BM25Index(folder, analyzer, k1=0.9, b=0.4, scoring="lucene")

    multifield = FieldsBM25({"title": index(["title"]), "text": index(["text"])})
    return {"flat": index(["title", "text"]).search(queries, top_k), "multifield": multifield.search(queries, top_k)}


def test_scifact_runs_are_anserinis_reference_runs(scifact, tmp_path):
    _, fields = scifact
    runs = our_runs(tmp_path, fields, REFERENCE["queries"], 10)
    for kind, reference in REFERENCE["runs"].items():
        for query_id, ranking in reference.items():
            assert list(runs[kind][query_id]) == [doc_id for doc_id, _ in ranking], (kind, query_id)
            # Anserini prints scores rounded to 1e-4 (and lowers tied ones by 1e-6 each to keep their order)
            assert list(runs[kind][query_id].values()) == pytest.approx([s for _, s in ranking], abs=1.1e-4)


def ndcg10(qrels, run) -> float:
    return evaluate_run(qrels, run, ["ndcg@10"])[0]["ndcg@10"]


@pytest.mark.slow
def test_scifact_runs_are_lucenes(scifact, mirror_dir, lucene_ref, tmp_path):
    """Flat and multifield: Lucene's hits in Lucene's order with Lucene's float32 scores, and Anserini's NDCG."""
    dataset, fields = scifact
    split = splits.load_split(dataset, "test")
    (tmp_path / "corpus").mkdir()
    with zipfile.ZipFile(mirror_dir / "scifact_beir.zip") as archive:
        (tmp_path / "corpus" / "corpus.jsonl").write_bytes(archive.read("scifact/corpus.jsonl"))
    flat = lucene_ref.index("BeirFlatCollection", tmp_path / "corpus", tmp_path / "flat" / "index")
    multifield = lucene_ref.index(
        "BeirMultifieldCollection", tmp_path / "corpus", tmp_path / "multifield" / "index", "-fields", "title"
    )
    fields_weights = ("contents=1.0", "title=1.0")
    lucene = {
        "flat": lucene_ref.search(flat, "en", split.queries),
        "multifield": lucene_ref.search(multifield, "en", split.queries, fields_weights),
    }
    anserini = {
        "flat": lucene_ref.anserini_run(flat, split.queries),
        "multifield": lucene_ref.anserini_run(multifield, split.queries, "-fields", *fields_weights),
    }
    ours = our_runs(tmp_path / "ours", fields, split.queries, 100)
    published = {"flat": 0.6789, "multifield": 0.6647}  # Anserini's BEIR regressions, SciFact test, NDCG@10
    for kind, run in ours.items():
        assert run == {q: ordered_ties(lucene[kind].get(q, [])) for q in split.queries}
        assert all(list(run[q]) == list(ranking) for q, ranking in anserini[kind].items())
        ndcg = ndcg10(split.qrels, run)
        print(f"SciFact {kind}: NDCG@10 {ndcg:.4f} (Anserini {ndcg10(split.qrels, anserini[kind]):.4f})")
        assert ndcg == pytest.approx(ndcg10(split.qrels, anserini[kind]), abs=1e-9)
        assert ndcg == pytest.approx(published[kind], abs=5e-5)


@pytest.mark.slow
def test_a_collection_of_ties_ranks_as_lucene_and_anserini_do(collections, lucene_ref, tmp_path):
    """Cranfield's titles as the documents: short texts, so many documents score alike. Each equal score is
    Lucene's float32 sum, and the run keeps Lucene's order of equal scores (document id) where trec_eval reads it."""
    dataset, _, split = collections["cranfield"]
    titles = {doc_id: fields["title"] for doc_id, fields in documents.load_doc_fields(dataset).items()}
    (tmp_path / "corpus").mkdir()
    lines = (json.dumps({"id": doc_id, "contents": title}) for doc_id, title in titles.items())
    (tmp_path / "corpus" / "titles.jsonl").write_text("".join(f"{line}\n" for line in lines))
    index = lucene_ref.index("JsonCollection", tmp_path / "corpus", tmp_path / "lucene" / "index")
    lucene, anserini = lucene_ref.search(index, "en", split.queries), lucene_ref.anserini_run(index, split.queries)
    analyzer = Analyzer("en")
    build_bm25_index(titles.items(), analyzer, tmp_path / "ours")
    run = BM25Index(tmp_path / "ours", analyzer, k1=0.9, b=0.4).search(split.queries, 100)

    tied = sum(a == b for hits in lucene.values() for (_, a), (_, b) in zip(hits, hits[1:], strict=False))
    top10 = sum(len({s for _, s in hits[:10]}) < len(hits[:10]) for hits in lucene.values())
    print(f"Cranfield titles: {tied} hits tied with the one before, {top10} queries with a tie in their top 10")
    assert tied > 5000 and top10 > 100
    assert run == {q: ordered_ties(lucene.get(q, [])) for q in split.queries}  # Lucene's order and float32 sums
    assert all(list(run[q]) == list(ranking) for q, ranking in anserini.items())  # Anserini's printed order
    ndcg = ndcg10(split.qrels, run)
    print(f"Cranfield titles: NDCG@10 {ndcg:.4f} (Anserini {ndcg10(split.qrels, anserini):.4f})")
    assert ndcg == pytest.approx(ndcg10(split.qrels, anserini), abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("language", ["de", "fr", "es"])
def test_other_languages_rank_as_anserini_does(language, lucene_ref, tmp_path):
    """A corpus per language drawn from its dictionary's 5,000 most frequent words (seeded; frequent words more
    often, documents of 3 to 60 words), indexed and searched by Anserini with -language and by us: Lucene's hits,
    order and scores."""
    frequencies = json.loads(
        gzip.decompress((files("spellchecker") / "resources" / f"{language}.json.gz").read_bytes())
    )
    common = sorted(frequencies, key=frequencies.get, reverse=True)[:5000]  # so that queries find documents
    words, weights = np.array(common), np.array([frequencies[word] for word in common], dtype=float) ** 0.5
    draw = np.random.default_rng(0)

    def text(low: int, high: int) -> str:
        return " ".join(draw.choice(words, size=draw.integers(low, high), p=weights / weights.sum()))

    docs = {f"d{i}": text(3, 60) for i in range(1500)}
    queries = {f"q{i}": text(2, 7) for i in range(100)}
    (tmp_path / "corpus").mkdir()
    lines = (json.dumps({"id": doc_id, "contents": contents}) for doc_id, contents in docs.items())
    (tmp_path / "corpus" / "docs.jsonl").write_text("".join(f"{line}\n" for line in lines))
    index = lucene_ref.index(
        "JsonCollection", tmp_path / "corpus", tmp_path / "lucene" / "index", "-language", language
    )
    lucene = lucene_ref.search(index, language, queries)
    anserini = lucene_ref.anserini_run(index, queries, "-language", language)
    analyzer = Analyzer(language)
    build_bm25_index(docs.items(), analyzer, tmp_path / "ours")
    run = BM25Index(tmp_path / "ours", analyzer, k1=0.9, b=0.4).search(queries, 100)

    hits = sum(map(len, run.values()))
    tied = sum(a == b for ranking in lucene.values() for (_, a), (_, b) in zip(ranking, ranking[1:], strict=False))
    print(f"{language}: {len(queries)} queries, {hits} hits ({tied} tied with the one before)")
    assert hits > 5000  # the queries match: the comparison is not vacuous
    assert run == {q: ordered_ties(lucene.get(q, [])) for q in queries}
    assert all(list(run[q]) == list(ranking) for q, ranking in anserini.items())
