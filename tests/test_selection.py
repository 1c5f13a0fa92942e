"""Choosing α and λ without a dev split: cross-validation folds and the label-free criteria, on hand-built runs
(where the right answer is known) and on real Cranfield with a tiny triple."""

import statistics

import pytest
from ir_datasets.datasets.cranfield import CranfieldQrels

from taskvec_ir.ir import data, retrieval
from taskvec_ir.pipeline import selection
from taskvec_ir.runs.job import open_experiment


def ranked_first(doc: str, docs=("r", "a", "b", "c")) -> dict[str, float]:
    """Scores that rank ``doc`` first, then the others in order."""
    others = [d for d in docs if d != doc]
    return {doc: 1.0, **{d: 0.5 - 0.1 * i for i, d in enumerate(others)}}


# -- cross-validation ----------------------------------------------------------------------------------------
def test_kfold_splits_queries_into_disjoint_seeded_folds():
    ids = [f"q{i}" for i in range(23)]
    folds = selection.kfold(ids, 5, seed=7)
    assert sorted(q for fold in folds for q in fold) == sorted(ids)
    assert {len(fold) for fold in folds} == {4, 5}
    assert selection.kfold(reversed(ids), 5, seed=7) == folds  # the order queries come in does not matter
    assert selection.kfold(ids, 5, seed=8) != folds
    with pytest.raises(ValueError, match="selection.folds: 30 folds of 23 queries"):
        selection.kfold(ids, 30, seed=0)


def test_each_fold_is_chosen_on_the_other_folds_and_never_reads_its_own_labels():
    """Setting A ranks the relevant document first for q0-q5, setting B for q6-q9: each fold takes the setting
    that wins on the other folds' queries, and changing (or deleting) a fold's own labels cannot change its
    choice, though it changes its evaluation."""
    queries = [f"q{i}" for i in range(10)]
    runs = {
        (0.0, 0.5): {q: ranked_first("r" if int(q[1:]) < 6 else "a") for q in queries},
        (1.0, 0.5): {q: ranked_first("a" if int(q[1:]) < 6 else "r") for q in queries},
    }
    qrels = {q: {"r": 1} for q in queries}
    folds = [tuple(queries[:4]), tuple(queries[4:7]), tuple(queries[7:])]

    def choose(judged):
        return selection.cross_validate([(*k, run) for k, run in runs.items()], judged, folds, "ndcg@10")

    chosen = choose(qrels)
    # Fold 1 (q0-q3) is chosen on q4-q9, where B wins 4 to 2; folds 2 and 3 on queries where A wins.
    assert [(f.alpha, f.lam) for f in chosen.folds] == [(1.0, 0.5), (0.0, 0.5), (0.0, 0.5)]
    assert chosen.alpha == pytest.approx(1 / 3) and chosen.lam == 0.5
    for i, fold in enumerate(folds):
        for own_labels in ({}, {q: {"a": 1} for q in fold}):  # deleted, or pointing the other way
            changed = {**{q: j for q, j in qrels.items() if q not in fold}, **own_labels}
            assert choose(changed).folds[i] == chosen.folds[i]
    # The other folds' labels do decide: those of fold 3 pointed the other way, fold 1 follows them.
    flipped = {q: ({"a": 1} if q in folds[2] else judged) for q, judged in qrels.items()}
    assert choose(flipped).folds[0].alpha == 0.0
    assert {row["fold"] for row in chosen.curve} == {0, 1, 2} and len(chosen.curve) == 6


# -- label-free criteria ---------------------------------------------------------------------------------------
def test_nqc_is_the_spread_of_the_top_scores_over_the_mean_score():
    assert selection.nqc({"a": 1.0, "b": 0.5, "c": 0.0}, k=2) == pytest.approx(0.25 / 0.5)
    assert selection.nqc({"a": 1.0, "b": 0.5, "c": 0.0}, k=3) == pytest.approx(statistics.pstdev([1, 0.5, 0]) / 0.5)
    assert selection.nqc({"a": 0.0, "b": 0.0}, k=2) is None  # no mean score to normalise by
    run = {"q1": {"a": 1.0, "b": 0.5, "c": 0.0}, "q2": {"a": 0.0}, "q3": {"a": 1.0, "b": 1.0}}
    assert selection.mean_nqc(run, k=2) == pytest.approx((0.5 + 0.0) / 2)  # q2 has no NQC


def test_stability_prefers_the_alpha_whose_neighbours_rank_alike():
    docs = ("r", "a", "b", "c")
    forward = {"q1": ranked_first("r", docs), "q2": ranked_first("a", docs)}
    backward = {q: {d: -s for d, s in scores.items()} for q, scores in forward.items()}
    assert selection.rank_agreement(forward, forward) == pytest.approx(1.0)
    assert selection.rank_agreement(forward, backward) == pytest.approx(-1.0)
    # α = 0 and 0.5 rank alike, α = 1 reverses them: α = 0 agrees with its one neighbour fully, 0.5 half-way.
    values = selection.stability({0.0: forward, 0.5: forward, 1.0: backward})
    assert values == pytest.approx({0.0: 1.0, 0.5: 0.0, 1.0: -1.0})
    assert selection.best_setting({(a, 0.3): v for a, v in values.items()}) == (0.0, 0.3)
    with pytest.raises(ValueError, match="at least two"):
        selection.stability({0.0: forward})


def test_ties_go_to_the_smaller_alpha_then_the_smaller_lambda():
    assert selection.best_setting({(0.5, 0.2): 1.0, (0.2, 0.9): 1.0, (0.2, 0.4): 1.0, (0.9, 0.0): 0.5}) == (0.2, 0.4)


# -- on Cranfield -----------------------------------------------------------------------------------------------
@pytest.fixture
def cranfield(cranfield_cfg):
    """A small grid: three α values, 30 pseudo-queries."""
    small = ("selection.alphas=[0.0,0.5,1.0]", "selection.pseudo_queries.count=30")
    return lambda *overrides: cranfield_cfg(*small, *overrides)


@pytest.mark.parametrize("backend", ["inverted_index", "rank_bm25"])
def test_a_text_scores_as_the_same_document_of_the_corpus_would(cranfield, backend):
    """score_text is the retriever's own BM25: a corpus document's text gets the score search gives it."""
    experiment = open_experiment(cranfield("selection=nqc", f"retriever.backend={backend}"))
    bm25 = experiment.first_stage.bm25()
    query = "boundary layer flow over a flat plate with heat transfer"
    found = bm25.search({"q": query}, 5)["q"]
    texts = data.doc_texts(experiment.spec.dataset, found)
    for doc_id, score in found.items():
        assert bm25.score_text(query, texts[doc_id]) == pytest.approx(score, rel=1e-9)
    assert bm25.score_text(query, "nothing in common") == 0.0
    assert isinstance(bm25, retrieval.BM25Index if backend == "inverted_index" else retrieval.BM25Retriever)


def test_pseudo_queries_have_the_rest_of_their_source_as_their_one_relevant_candidate(cranfield):
    experiment = open_experiment(cranfield("selection=pseudo_queries"))
    name = selection.pseudo_queries(experiment, experiment_settings := cranfield().selection.pseudo_queries)
    split, candidates, texts = experiment.split(name), experiment.candidates(name), experiment.texts(name)
    assert 20 <= len(split.queries) <= experiment_settings.count
    found = 0
    for query_id, text in split.queries.items():
        (relevant,) = split.qrels[query_id]
        source = relevant.split(selection.REST)[0]
        assert source not in candidates[query_id]  # the source only as its rest, which lacks the query
        assert text not in texts[relevant] and len(texts[relevant].split()) > len(text.split())
        assert len(candidates[query_id]) <= 10 and all(d in texts for d in candidates[query_id])
        found += relevant in candidates[query_id]
    assert found >= 0.8 * len(split.queries)  # a title's words are in its paper: BM25 finds most of them
    again = open_experiment(cranfield("selection=pseudo_queries"))  # cached: the same queries, no corpus pass
    assert selection.pseudo_queries(again, experiment_settings) == name
    assert again.candidates(name) == candidates and again.cache.stats["pseudo_queries.hit"] == 1


@pytest.fixture
def no_qrels(monkeypatch):
    """Every qrels reader of ir_datasets and of the data module fails from here on."""

    def refuse(*args, **kwargs):
        raise AssertionError("a label-free selection read qrels")

    monkeypatch.setattr(CranfieldQrels, "qrels_iter", refuse)
    monkeypatch.setattr(data, "_irds_qrels", refuse)
    monkeypatch.setattr(data, "load_split", refuse)


@pytest.mark.parametrize("method", ["pseudo_queries", "stability", "nqc"])
def test_label_free_selections_read_no_qrels(cranfield, method, monkeypatch, request):
    """Chosen with every qrels reader failing, on Cranfield's test queries (it has no dev split); the choice is
    one of the grid's settings, and the job then evaluates it on test as any run."""
    cfg = cranfield(f"selection={method}")
    experiment = open_experiment(cfg)
    # What opening the experiment loaded (the evaluated split, with its qrels) is gone.
    experiment.first_stage._splits.clear()
    request.getfixturevalue("no_qrels")
    choice = selection.choose(experiment, cfg)
    assert choice.method == method and len(choice.folds) == 1 and choice.folds[0].queries is None
    assert choice.alpha in (0.0, 0.5, 1.0) and choice.lam in cfg.lam.grid
    assert len(choice.curve) == 3 * (len(cfg.lam.grid) if method == "pseudo_queries" else 1)
    if method != "pseudo_queries":  # stability and NQC cannot choose λ
        assert choice.lam == cfg.selection.lam
    assert "test (unlabeled)" in choice.criterion or method == "pseudo_queries"
    assert max(row["value"] for row in choice.curve) == next(
        row["value"] for row in choice.curve if (row["alpha"], row["lam"]) == (choice.alpha, choice.lam)
    )
