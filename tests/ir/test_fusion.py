import pytest

from taskvec_ir.ir.fusion import fuse

BM25 = {"q": {"a": 10.0, "b": 5.0, "c": 0.0}}
MODEL = {"q": {"a": 0.1, "b": 0.9, "c": 0.5}}


def test_fusion_is_lambda_weighted_min_max_sum():
    # minmax(BM25) = a 1, b 0.5, c 0; minmax(model) = a 0, b 1, c 0.5; λ = 0.3 weights BM25.
    fused = fuse(BM25, MODEL, 0.3)["q"]
    assert fused == pytest.approx({"a": 0.3, "b": 0.15 + 0.7, "c": 0.35})


def test_lambda_ends_are_one_side_alone():
    assert fuse(BM25, MODEL, 0.0)["q"] == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.5})
    assert fuse(BM25, MODEL, 1.0)["q"] == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})


def test_constant_scores_and_empty_queries():
    fused = fuse({"q": {"a": 2.0, "b": 2.0}, "empty": {}}, {"q": {"a": 1.0, "b": 3.0}, "empty": {}}, 0.5)
    assert fused == {"q": pytest.approx({"a": 0.0, "b": 0.5})}


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan"), "0.3", None])
def test_bad_lambda_is_refused(lam):
    with pytest.raises(ValueError, match=r"lam\.value"):
        fuse(BM25, MODEL, lam)
