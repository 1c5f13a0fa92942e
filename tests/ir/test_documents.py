"""A dataset's documents: Cranfield from the offline mirror, and the tiny BEIR collection (tests/ir/conftest.py)."""

import pytest

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.ir import documents


def test_cranfield_has_its_1400_documents_two_of_them_empty(cranfield):
    docs = documents.load_docs(cranfield)
    assert len(docs) == 1400
    assert [doc_id for doc_id, text in docs.items() if not text] == ["471", "995"]  # empty in the source


def test_doc_fields_are_joined_in_order(cranfield):
    import ir_datasets

    doc = next(ir_datasets.load("cranfield").docs_iter())
    assert documents.load_docs(cranfield)[doc.doc_id] == f"{doc.title} {doc.text}"
    assert documents.load_doc_fields(cranfield)[doc.doc_id] == {"title": doc.title, "text": doc.text}
    assert documents.doc_texts(cranfield, [doc.doc_id, "absent"]) == {doc.doc_id: f"{doc.title} {doc.text}"}


def test_a_sample_depends_on_the_seed_not_the_corpus_order(cranfield):
    sample = documents.sample_doc_fields(cranfield, 20, seed=0)
    assert len(sample) == 20 and list(sample) == sorted(sample)
    assert documents.sample_doc_fields(cranfield, 20, seed=0) == sample
    assert set(documents.sample_doc_fields(cranfield, 20, seed=1)) != set(sample)
    whole = documents.load_doc_fields(cranfield)
    assert all(whole[doc_id] == parts for doc_id, parts in sample.items())


def test_unknown_ir_datasets_id_names_the_config_key(irds_home):
    with pytest.raises(ValueError, match="dataset.docs"):
        documents.load_docs(
            DatasetConfig(name="x", docs="no-such-collection", doc_fields=["text"], splits={"test": "x"})
        )


def test_the_tiny_collection_joins_a_missing_title_away(beir_sources, tiny_dataset):
    docs = documents.load_docs(tiny_dataset("tiny-folder", beir_sources["folder"]))
    assert docs == {"d0": "text 0", **{f"d{i}": f"title {i} text {i}" for i in range(1, 6)}}
    assert documents.join_fields({"title": "", "text": "text 0"}) == "text 0"
