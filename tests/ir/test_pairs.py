"""Pairs to train or choose on: mined from documents (inverse cloze, pseudo-queries), and the supervised control's
judged pairs on real SciFact (what it trains on, the queries it leaves out)."""

import os
from dataclasses import replace

import pytest

from taskvec_ir.ir import irds, splits
from taskvec_ir.ir.pairs import SPAN_WORDS, auto_pair_source, document_pairs, judged_pairs, word_spans
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
    assert domain.training_settings() != replace(domain, dataset=smaller).training_settings()
