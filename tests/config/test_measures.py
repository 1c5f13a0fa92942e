"""Measures whose cut-off lies beyond the documents a run retrieved: named, whichever way the measure is written."""

from taskvec_ir.config.measures import MEASURES, cutoff_beyond_depth


def test_measures_cut_off_deeper_than_top_k_are_named_in_order():
    assert cutoff_beyond_depth(MEASURES, 10) == ["map@100", "recall@100"]
    assert cutoff_beyond_depth(MEASURES, 100) == [] and cutoff_beyond_depth(MEASURES, 5) == [
        "ndcg@10",
        "precision@10",
        "map@100",
        "recall@100",
    ]
    # ir_measures' own names, relevance levels, and measures without a cut-off (they rank the whole run)
    written = ["R@100", "P(rel=2)@20", "precision@20-l2", "hit_rate@11", "ndcg@10", "map", "mrr", "ndcg"]
    assert cutoff_beyond_depth(written, 10) == ["R@100", "P(rel=2)@20", "precision@20-l2", "hit_rate@11"]
