"""BEIR-layout collections: registered in ir_datasets from a folder or a zip, their splits read from the layout."""

import pytest

from taskvec_ir.ir import beir, documents, splits


@pytest.mark.parametrize("layout", ["folder", "zip"])
def test_beir_collection_registers_and_loads(irds_home, beir_sources, tiny_dataset, layout):
    import ir_datasets

    name = f"tiny-{layout}"
    dataset = tiny_dataset(name, beir_sources[layout])
    docs = documents.load_docs(dataset)
    assert docs == {"d0": "text 0", **{f"d{i}": f"title {i} text {i}" for i in range(1, 6)}}
    test = splits.load_split(dataset, "test")
    assert test.queries == {"t1": "query t1", "t2": "query t2", "t3": "query t3"}
    assert test.qrels == {"t1": {"d1": 2}, "t2": {"d2": 1}, "t3": {"d3": 0}}
    assert len(splits.load_split(dataset, "train").queries) == 50
    # ir_datasets.load is the path used, and registering the same source again is a no-op
    assert len(list(ir_datasets.load(f"{name}/test").qrels_iter())) == 3
    beir.register_beir_collection(name, beir_sources[layout])
    assert beir.beir_splits(beir_sources[layout]) == ["test", "train"]


def test_registering_another_source_under_a_taken_name_fails(irds_home, beir_sources):
    beir.register_beir_collection("tiny-taken", beir_sources["folder"])
    with pytest.raises(ValueError, match="dataset.name"):
        beir.register_beir_collection("tiny-taken", beir_sources["zip"])
    with pytest.raises(ValueError, match="dataset.name"):
        beir.register_beir_collection("cranfield", beir_sources["zip"])


def test_missing_beir_path_names_the_config_key(irds_home, tiny_dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.beir_path"):
        documents.load_docs(tiny_dataset("tiny-missing", tmp_path / "absent"))
