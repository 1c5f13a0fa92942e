"""Pairs to train or choose on: mined from documents (inverse cloze, pseudo-queries), and the supervised control's
judged pairs (what it trains on; the queries, near-duplicates and documents it leaves out) on a constructed
collection and on real SciFact, whose exposure to dev and test is measured here."""

import json
import os
from dataclasses import replace

import pytest

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.errors import UserError
from taskvec_ir.ir import irds, splits
from taskvec_ir.ir.pairs import (
    SPAN_WORDS,
    auto_pair_source,
    distinct_words,
    document_pairs,
    judged_pairs,
    word_overlap,
    word_spans,
)
from taskvec_ir.runs.compose import compose

KEY = "adapt.pair_source"


def test_a_title_or_a_sentence_is_paired_with_the_rest_of_its_document():
    documents = [
        {
            "title": "Wing flow at high speed",
            "text": "The wing was tested in a tunnel today. Short one. The flow separated near the trailing edge.",
        },
        {"title": "Notes", "text": "A single sentence of the text of this document."},  # title too short
        {
            "title": "heat in the boundary layer",
            "text": "heat in the boundary layer . the heat flux was measured at six stations .",
        },
    ]
    title_pairs = [d.pair(q) for d in document_pairs(documents, "title", None, 0, KEY) for q in d.queries]
    assert title_pairs == [
        (
            "Wing flow at high speed",
            "The wing was tested in a tunnel today. Short one. The flow separated near the trailing edge.",
        ),
        # A text that opens with its title (Cranfield's) loses that copy, or the pair would be trivial.
        ("heat in the boundary layer", "the heat flux was measured at six stations ."),
    ]
    sentence_pairs = [d.pair(q) for d in document_pairs(documents, "sentence", None, 0, KEY) for q in d.queries]
    assert sentence_pairs == [  # short sentences are no query, but stay in the positive; a lone sentence has no rest
        (
            "The wing was tested in a tunnel today.",
            "Wing flow at high speed Short one. The flow separated near the trailing edge.",
        ),
        (
            "The flow separated near the trailing edge.",
            "Wing flow at high speed The wing was tested in a tunnel today. Short one.",
        ),
    ]
    both = document_pairs(documents, "both", None, 0, KEY)
    assert [d.pair(q) for d in both for q in d.queries] == [*title_pairs[:1], *sentence_pairs, title_pairs[1]]
    assert len(both) == 2  # grouped by document: a batch draws documents, so it never holds one twice
    drawn = document_pairs(documents, "both", 2, seed=0, key=KEY)
    assert sum(len(d.queries) for d in drawn) == 2 and drawn == document_pairs(documents, "both", 2, seed=0, key=KEY)
    assert any(document_pairs(documents, "both", 2, seed=s, key=KEY) != drawn for s in range(1, 5))


def test_documents_without_pairs_are_refused_naming_the_key_that_chose_the_source():
    untitled = [{"text": "One sentence of six words. And another one of six words."}]
    with pytest.raises(ValueError, match=r"^adapt\.pair_source: .* no title pairs .*'title' field"):
        document_pairs(untitled, "title", None, 0, KEY)
    with pytest.raises(ValueError, match=r"^selection\.pseudo_queries\.source: the documents give no title pairs"):
        document_pairs(untitled, "title", None, 0, "selection.pseudo_queries.source")


def test_a_span_is_a_piece_of_span_words_consecutive_words():
    words = [f"w{i}" for i in range(25)]
    spans = word_spans([" ".join(words[:12]), " ".join(words[12:])])
    assert [span.split() for span in spans] == [words[:SPAN_WORDS], words[SPAN_WORDS : 2 * SPAN_WORDS], words[20:]]
    (document,) = document_pairs([{"text": " ".join(words)}], "span", None, 0, KEY)
    assert document.queries == (0, 1)  # the last piece, 5 words, is too short to be a query
    assert document.pair(1) == (spans[1], f"{spans[0]} {spans[2]}")


@pytest.mark.parametrize(
    "documents, source",
    [
        ([{"title": "flow over a flat plate", "text": "The flow was measured. It separated early."}] * 4, "title"),
        (
            [{"title": "", "text": "The flow over the plate was measured. It separated early at the edge."}] * 4,
            "sentence",
        ),
        ([{"title": "", "text": " ".join(["flow over a flat plate"] * 5)}] * 4, "span"),
    ],
    ids=["titled", "untitled", "unpunctuated"],
)
def test_auto_takes_titles_then_sentences_then_word_spans(documents, source):
    assert auto_pair_source(documents, "selection.pseudo_queries.source") == source


def test_auto_without_any_pair_names_the_key():
    with pytest.raises(ValueError, match=r"^selection\.pseudo_queries\.source: auto found no title, sentence or span"):
        auto_pair_source([{"title": "", "text": ""}] * 2, "selection.pseudo_queries.source")


# -- judged pairs: what the supervised control leaves out, on a constructed collection ----------------------------
# Train holds t1's negated twin (a1: 10 of its 11 distinct words are t1's), a claim relevant to t2's abstract in other
# words (a2), t3's claim under another id (a5) and two claims apart from test (a3, a4; a4 judged with two abstracts).
TWINS = {
    "train": {
        "a1": ("Vitamin D deficiency increases the risk of fractures in older adults.", ["d1"]),
        "a2": ("Statins lower cholesterol in adults.", ["d2"]),
        "a3": ("Coffee improves sleep quality.", ["d3"]),
        "a4": ("Exercise reduces blood pressure.", ["d3", "d4"]),
        "a5": ("Smoking causes lung cancer.", ["d5"]),
    },
    "test": {
        "t1": ("Vitamin D deficiency does not increase the risk of fractures in older adults.", ["d1"]),
        "t2": ("Lowering LDL prevents heart attacks.", ["d2"]),
        "t3": ("smoking  causes lung  cancer.", ["d5"]),
    },
}
APART = [("a3", "d3"), ("a4", "d3"), ("a4", "d4")]  # the pairs every variant keeps


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> DatasetConfig:
    """TWINS as a BEIR folder (train and test qrels), registered in ir_datasets."""
    irds.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    folder = tmp_path_factory.mktemp("twins")
    docs = [{"_id": f"d{i}", "title": f"Abstract {i}", "text": f"The findings of study {i}."} for i in range(1, 6)]
    queries = [{"_id": qid, "text": text} for split in TWINS.values() for qid, (text, _) in split.items()]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(query) + "\n" for query in queries))
    (folder / "qrels").mkdir()
    for split, judged in TWINS.items():
        rows = [f"{qid}\t{doc_id}\t1\n" for qid, (_, doc_ids) in judged.items() for doc_id in doc_ids]
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    return DatasetConfig(
        name="twins",
        docs="twins",
        doc_fields=["title", "text"],
        query_field="text",
        splits={"train": "twins/train", "test": "twins/test"},
        relevance_map=None,
        beir_path=str(folder),
    )


def test_a_negated_twin_is_a_near_duplicate_at_its_word_overlap_and_not_above_it(twins):
    a1, t1 = (distinct_words(TWINS[split][qid][0]) for split, qid in (("train", "a1"), ("test", "t1")))
    assert word_overlap(a1, t1) == word_overlap(t1, a1) == 10 / 11
    for threshold, kept in ((None, True), (1.0, True), (0.91, True), (10 / 11, False), (0.7, False)):
        judged = judged_pairs(twins, "train", near_duplicate_overlap=threshold, exclude_relevant_documents=False)
        assert ("a1", "d1") in judged.pairs if kept else ("a1", "d1") not in judged.pairs
        assert judged.excluded["test"].near_duplicates == ([] if kept else ["a1"])
        assert judged.excluded["test"].queries == ["a5"]  # t3's text, by its normalised text


def test_near_duplicates_go_then_the_pairs_of_test_abstracts_in_the_strict_variant(twins):
    exact = judged_pairs(twins, "train", near_duplicate_overlap=None, exclude_relevant_documents=False)
    assert exact.pairs == [("a1", "d1"), ("a2", "d2"), *APART]
    default = judged_pairs(twins, "train", near_duplicate_overlap=0.7, exclude_relevant_documents=False)
    assert default.pairs == [("a2", "d2"), *APART]  # a2 shares t2's abstract in other words: kept
    strict = judged_pairs(twins, "train", near_duplicate_overlap=0.7, exclude_relevant_documents=True)
    assert strict.pairs == APART and sorted(strict.documents) == ["d3", "d4"] and list(strict.queries) == ["a3", "a4"]
    assert strict.record() == {
        "split": "train",
        "queries": 2,
        "pairs": 3,
        "documents": 2,
        "near_duplicate_overlap": 0.7,
        "exclude_relevant_documents": True,
        "excluded": {
            "test": {
                "queries": 1,
                "ids": ["a5"],
                "near_duplicates": 1,
                "near_duplicate_ids": ["a1"],
                "documents": 1,  # d1 left with a1 and d5 with a5: d2 alone still had a pair
                "document_ids": ["d2"],
                "document_pairs": 1,
            }
        },
    }
    documents_alone = judged_pairs(twins, "train", near_duplicate_overlap=None, exclude_relevant_documents=True)
    assert documents_alone.pairs == APART and documents_alone.excluded["test"].documents == ["d1", "d2"]


def test_a_split_left_without_pairs_is_refused_naming_it(twins):
    bare = replace(twins, splits={"train": "twins/train", "test": "twins/train"})  # test would take every pair
    with pytest.raises(UserError, match=r"dataset 'twins' split 'train': no relevant \(query, document\) pair is left"):
        judged_pairs(bare, "train", near_duplicate_overlap=None, exclude_relevant_documents=False)


@pytest.mark.parametrize(
    "claim, other, overlap",
    [  # SciFact's own claims (train, test or dev)
        ("Obesity raises life quality.", "Obesity decreases life quality.", 3 / 4),
        (
            "0-dimensional biomaterials lack inductive properties.",
            "0-dimensional biomaterials show inductive properties.",
            5 / 6,
        ),
        (
            "Rapamycin delays aging in fruit flies.",
            "Rapamycin decreases the concentration of triacylglycerols in fruit flies.",
            4 / 6,
        ),
        (
            "CCL19 is a ligand for CCR7.",
            "Histone demethylase recruitment and a transient decrease in histone methylation is "
            "necessary for ligand-dependent induction of transcription by nuclear receptors.",
            4 / 6,
        ),
        ("CHEK2 is not associated with breast cancer.", "CHEK2 is associated with breast cancer.", 1.0),
        ("...", "Any claim.", 0.0),
    ],
)
def test_word_overlap_is_the_share_of_the_shorter_claims_distinct_words_in_the_other(claim, other, overlap):
    assert word_overlap(distinct_words(claim), distinct_words(other)) == pytest.approx(overlap)


# -- judged pairs: the supervised control on SciFact ---------------------------------------------------------------
@pytest.fixture(scope="module")
def scifact(mirror_dir):
    """The supervised triple's config on SciFact (its ΘD trained on the evaluated dataset), data placed."""
    irds.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])
    cfg = compose(
        ["model=minilm_scifact_supervised", f"data.mirror_dir={mirror_dir}", "model.scorer.show_progress=false"]
    )
    irds.place_offline_files(cfg.dataset, mirror_dir)
    return cfg


def irds_positive_pairs(irds_id: str) -> set[tuple[str, str]]:
    import ir_datasets

    return {(q.query_id, q.doc_id) for q in ir_datasets.load(irds_id).qrels_iter() if q.relevance > 0}


def held_out_texts(dataset) -> set[str]:
    """The texts of every dev and test query, as the evaluation reads them."""
    return {
        " ".join(t.lower().split()) for split in ("dev", "test") for t in splits.load_queries(dataset, split).values()
    }


def test_the_pairs_are_trains_judged_pairs_without_any_dev_or_test_query(scifact):
    """Train's positive pairs (ir_datasets' own qrels) less the dev queries the evaluation reads, and less the 4
    train queries whose claim SciFact repeats, under another id, in dev (2) or test (2)."""
    import ir_datasets

    train = irds_positive_pairs("beir/scifact/train")
    texts = {
        q.query_id: " ".join(q.text.lower().split()) for q in ir_datasets.load("beir/scifact/train").queries_iter()
    }
    dev = set(splits.load_queries(scifact.dataset, "dev"))  # the queries a sweep tunes on
    repeated = {q for q, _ in train if q not in dev and texts[q] in held_out_texts(scifact.dataset)}
    judged = judged_pairs(
        scifact.model.domain.dataset, "train", near_duplicate_overlap=None, exclude_relevant_documents=False
    )
    assert (len(train), len({q for q, _ in train}), len(dev), sorted(repeated)) == (
        919,
        809,
        162,
        ["1291", "85", "871", "90"],
    )
    assert set(judged.pairs) == {(q, d) for q, d in train if q not in dev | repeated}
    assert (len(judged.pairs), len(judged.queries), len(judged.documents)) == (725, 643, 491)
    assert {split: left_out.queries for split, left_out in judged.excluded.items()} == {
        "dev": sorted(dev | {"85", "90"}),
        "test": ["1291", "871"],
    }
    assert not {" ".join(t.lower().split()) for t in judged.queries.values()} & held_out_texts(scifact.dataset)
    record = judged.record()
    assert (record["split"], record["pairs"], record["queries"], record["documents"]) == ("train", 725, 643, 491)
    assert record["excluded"]["test"] == {
        "queries": 2,
        "ids": ["1291", "871"],
        "near_duplicates": 0,
        "near_duplicate_ids": [],
        "documents": 0,
        "document_ids": [],
        "document_pairs": 0,
    }


def test_another_dev_sample_excludes_its_own_queries_and_keys_its_own_checkpoint(scifact):
    dataset = scifact.model.domain.dataset
    smaller = replace(dataset, splits={**dataset.splits, "dev": replace(dataset.splits["dev"], fraction=0.05)})
    dev = set(splits.load_queries(smaller, "dev"))
    judged = judged_pairs(smaller, "train", near_duplicate_overlap=None, exclude_relevant_documents=False)
    assert len(dev) == 40 and dev <= set(judged.excluded["dev"].queries) and not dev & set(judged.queries)
    assert len(judged.queries) == 809 - len(judged.excluded["dev"].queries) - 2  # the 2 repeated in test
    domain = scifact.model.domain
    assert domain.identity() != replace(domain, dataset=smaller).identity()


def exposure(judged, dataset, threshold: float = 0.7) -> dict[str, tuple[int, int, int]]:
    """Per other split: (training claims that are near-duplicates of one of its claims, those of them judged
    relevant to an abstract that claim is relevant to, its queries with a relevant abstract among the training
    positives)."""
    positives = {doc_id for _, doc_id in judged.pairs}
    training = {qid: distinct_words(text) for qid, text in judged.queries.items()}
    trained = {qid: {doc_id for q, doc_id in judged.pairs if q == qid} for qid in training}
    measured = {}
    for split in ("dev", "test"):
        held = splits.load_split(dataset, split)
        relevant = {qid: {d for d, r in judged_docs.items() if r > 0} for qid, judged_docs in held.qrels.items()}
        near = {
            qid: [h for h, text in held.queries.items() if word_overlap(words, distinct_words(text)) >= threshold]
            for qid, words in training.items()
        }
        near = {qid: twins for qid, twins in near.items() if twins}
        sharing = [qid for qid, twins in near.items() if any(trained[qid] & relevant.get(h, set()) for h in twins)]
        measured[split] = (len(near), len(sharing), sum(bool(docs & positives) for docs in relevant.values()))
    return measured


def test_the_exposure_of_dev_and_test_to_training_and_what_each_variant_leaves(scifact):
    """SciFact's altered twins: with other splits' queries left out by id and text alone, 184 of the 643 training
    claims are near-duplicates (word overlap ≥ 0.7) of a dev or test claim, nearly all judged relevant to an
    abstract their twin is, and 162 of the 300 test queries have a relevant abstract that is a training positive.
    Leaving out near-duplicates (the default) cuts that to 64; leaving out the other splits' relevant abstracts
    too (strict) to none."""
    dataset = scifact.model.domain.dataset
    exact, default, strict = (
        judged_pairs(dataset, "train", near_duplicate_overlap=overlap, exclude_relevant_documents=documents)
        for overlap, documents in ((None, False), (0.7, False), (0.7, True))
    )
    assert exposure(exact, dataset) == {"dev": (69, 69, 89), "test": (130, 126, 162)}
    near = {split: set(left_out.near_duplicates) for split, left_out in default.excluded.items()}
    assert (len(near["dev"]), len(near["test"]), len(near["dev"] | near["test"])) == (69, 130, 184)
    assert set(default.queries) == set(exact.queries) - near["dev"] - near["test"]
    assert exposure(default, dataset) == {"dev": (0, 0, 35), "test": (0, 0, 64)}
    assert exposure(strict, dataset) == {"dev": (0, 0, 0), "test": (0, 0, 0)}
    left = {
        variant: (len(judged.pairs), len(judged.queries), len(judged.documents))
        for variant, judged in (("exact", exact), ("default", default), ("strict", strict))
    }
    assert left == {"exact": (725, 643, 491), "default": (501, 459, 344), "strict": (375, 341, 258)}
    removed = {
        split: (len(left_out.near_duplicates), len(left_out.documents), left_out.document_pairs)
        for split, left_out in strict.excluded.items()
    }
    assert removed == {"dev": (69, 37, 59), "test": (130, 59, 82)}  # a document can be relevant in both
    assert strict.record()["excluded"]["test"]["document_pairs"] == 82
