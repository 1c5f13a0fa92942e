"""Choosing α and λ without a dev split: cross-validation folds and the label-free criteria, on hand-built runs
(where the right answer is known) and on real Cranfield with a tiny triple."""

import json
import math
import statistics

import numpy as np
import pytest
from ir_datasets.datasets.cranfield import CranfieldQrels

from taskvec_ir.ir import data, evaluation
from taskvec_ir.ir.bm25 import BM25Retriever
from taskvec_ir.ir.bm25_index import BM25Index
from taskvec_ir.models.adapt import SPAN_WORDS
from taskvec_ir.pipeline import selection
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.runs.compose import compose
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
    # What ran is each fold's α: no mean of them (1/3, a setting that never ran) stands for the choice.
    assert chosen.alpha is None and chosen.lam == 0.5
    assert chosen.describe()["alpha"] is None and [f["alpha"] for f in chosen.describe()["folds"]] == [1, 0, 0]
    assert chosen.settings_text() == "α/λ per fold: 1/0.5 0/0.5 0/0.5"
    for i, fold in enumerate(folds):
        for own_labels in ({}, {q: {"a": 1} for q in fold}):  # deleted, or pointing the other way
            changed = {**{q: j for q, j in qrels.items() if q not in fold}, **own_labels}
            assert choose(changed).folds[i] == chosen.folds[i]
    # The other folds' labels do decide: those of fold 3 pointed the other way, fold 1 follows them.
    flipped = {q: ({"a": 1} if q in folds[2] else judged) for q, judged in qrels.items()}
    assert choose(flipped).folds[0].alpha == 0.0
    assert {row["fold"] for row in chosen.curve} == {0, 1, 2} and len(chosen.curve) == 6


# -- label-free criteria ---------------------------------------------------------------------------------------
def test_nqc_is_the_spread_of_the_top_scores_over_the_corpus_score():
    """Shtok et al.: std of the top k scores over |the corpus's score| (here the mean score of a corpus sample)."""
    assert selection.nqc([3.0, 1.0, 2.0], corpus_score=-2.0, k=2) == pytest.approx(0.5 / 2)  # top 3, 2
    assert selection.nqc([3.0, 1.0, 2.0], corpus_score=0.5, k=3) == pytest.approx(statistics.pstdev([3, 1, 2]) / 0.5)
    assert math.isnan(selection.nqc([1.0, 2.0], corpus_score=0.0, k=2))  # no corpus score to normalise by
    scores = {"q1": {"a": 3.0, "b": 1.0, "c": 2.0}, "q2": {"a": 1.0, "b": 5.0}, "q3": {"a": 4.0}}
    corpus = {"q1": {"x": -1.0, "y": -3.0}, "q2": {"x": 1.0, "y": -1.0}, "q3": {"x": 2.0}}
    found = selection.mean_nqc(scores, corpus, k=2)
    # q1: 0.5 / |−2|; q2: its corpus score is 0, undefined (counted, not 0); q3: one score, spread 0, over 2.
    assert found.value == pytest.approx((0.25 + 0.0) / 2) and (found.defined, found.undefined) == (2, 1)
    assert math.isnan(selection.mean_nqc({"q2": scores["q2"]}, corpus, k=2).value)


def flipping_runs(alphas, flips, queries=4):
    """Runs at ``alphas`` whose step from ``alphas[j]`` to ``alphas[j + 1]`` reverses the ranking of ``flips[j]``
    of the ``queries`` queries (τ = −1 for them, 1 for the others): a rank change (1 − τ) of 2·flips[j]/queries."""
    forward = {f"q{i}": ranked_first("r") for i in range(queries)}
    runs = {alphas[0]: forward}
    for j, flipped in enumerate(flips):
        previous = runs[alphas[j]]
        runs[alphas[j + 1]] = {
            q: {d: -s for d, s in scores.items()} if i < flipped else scores
            for i, (q, scores) in enumerate(previous.items())
        }
    return runs


def test_rank_agreement_is_weighted_tau_and_undefined_queries_are_counted_not_agreeing():
    docs = ("r", "a", "b", "c")
    forward = {"q1": ranked_first("r", docs), "q2": ranked_first("a", docs)}
    backward = {q: {d: -s for d, s in scores.items()} for q, scores in forward.items()}
    assert selection.rank_agreement(forward, forward).value == pytest.approx(1.0)
    assert selection.rank_agreement(forward, backward).value == pytest.approx(-1.0)
    single = {"q3": {"r": 1.0}, "q4": {"r": 1.0, "a": 1.0}}  # one document; constant scores: no τ
    mixed = selection.rank_agreement({**forward, **single}, {**backward, **single})
    assert mixed.value == pytest.approx(-1.0) and (mixed.defined, mixed.undefined) == (2, 2)
    assert math.isnan(selection.rank_agreement(single, single).value)  # not 1.0: nothing agreed


@pytest.mark.parametrize(
    "alphas, flips, expected, chosen",
    [
        # Rank change falls steadily with α (3, 2, 1, 0 of 4 queries flip per 0.25 step): per unit α, 6, 4, 2, 0.
        # The old mean of raw agreements gave the end α = 1 (one pair, τ = 1) a score no interior value could
        # reach; each interior value now averages its two sides: −(6+4)/2, −(4+2)/2, −(2+0)/2.
        ([0.0, 0.25, 0.5, 0.75, 1.0], [3, 2, 1, 0], {0.25: -5.0, 0.5: -3.0, 0.75: -1.0}, 0.75),
        # Rising: the mirror image, α = 0.25 (the old method chose the end α = 0).
        ([0.0, 0.25, 0.5, 0.75, 1.0], [0, 1, 2, 3], {0.25: -1.0, 0.5: -3.0, 0.75: -5.0}, 0.25),
        # An interior plateau between changes at both ends: α = 0.5 changes on neither side.
        ([0.0, 0.25, 0.5, 0.75, 1.0], [2, 0, 0, 2], {0.25: -2.0, 0.5: 0.0, 0.75: -2.0}, 0.5),
        # Uneven grid (gaps 0.1, 0.4, 0.5), 1, 2, 2 of 4 queries flip: changes 0.5, 1 and 1, per unit α 5, 2.5,
        # 2. Per unit α, α = 0.5 is the steadier (−2.25 against −3.75); raw change per step would have preferred
        # 0.1 (−0.75 against −1), only because its gap to 0 is narrow.
        ([0.0, 0.1, 0.5, 1.0], [1, 2, 2], {0.1: -3.75, 0.5: -2.25}, 0.5),
    ],
    ids=["falling", "rising", "interior_plateau", "uneven_grid"],
)
def test_stability_compares_alphas_with_two_neighbours_per_unit_alpha(alphas, flips, expected, chosen):
    values = selection.stability(flipping_runs(alphas, flips))
    assert {alpha: value.value for alpha, value in values.items()} == pytest.approx(expected)
    assert all(value.undefined == 0 for value in values.values())
    assert selection.best_setting({(a, 0.3): v.value for a, v in values.items()}) == (chosen, 0.3)


def test_stability_needs_three_alphas_and_an_undefined_criterion_never_wins():
    with pytest.raises(ValueError, match="three or more"):
        selection.stability(flipping_runs([0.0, 1.0], [1]))
    assert selection.best_setting({(0.0, 0.3): math.nan, (0.5, 0.3): -2.0}) == (0.5, 0.3)
    with pytest.raises(ValueError, match="undefined at every setting"):
        selection.best_setting({(0.0, 0.3): math.nan, (0.5, 0.3): math.nan})


def test_ties_go_to_the_smaller_alpha_then_the_smaller_lambda():
    assert selection.best_setting({(0.5, 0.2): 1.0, (0.2, 0.9): 1.0, (0.2, 0.4): 1.0, (0.9, 0.0): 0.5}) == (0.2, 0.4)


# -- on Cranfield -----------------------------------------------------------------------------------------------
@pytest.fixture
def cranfield(cranfield_cfg):
    """A small grid: three α values, 30 pseudo-queries."""
    small = ("selection.alphas=[0.0,0.5,1.0]", "selection.pseudo_queries.count=30")
    return lambda *overrides: cranfield_cfg(*small, *overrides)


@pytest.mark.parametrize(
    "backend, scoring", [("inverted_index", "lucene"), ("inverted_index", "robertson"), ("rank_bm25", "robertson")]
)
def test_a_text_scores_as_the_same_document_of_the_corpus_would(cranfield, backend, scoring):
    """score_text is the retriever's own BM25: a corpus document's text gets the score search gives it."""
    experiment = open_experiment(
        cranfield("selection=nqc", f"retriever.backend={backend}", f"retriever.bm25={scoring}")
    )
    bm25 = experiment.first_stage.bm25()
    query = "boundary layer flow over a flat plate with heat transfer"
    found = bm25.search({"q": query}, 5)["q"]
    texts = data.doc_texts(experiment.spec.dataset, found)
    for doc_id, score in found.items():
        assert bm25.score_text(query, texts[doc_id]) == pytest.approx(score, rel=1e-9)
    assert bm25.score_text(query, "nothing in common") == 0.0
    assert isinstance(bm25, BM25Index if backend == "inverted_index" else BM25Retriever)


def test_pseudo_queries_have_the_rest_of_their_source_as_their_one_relevant_candidate(cranfield):
    experiment = open_experiment(cranfield("selection=pseudo_queries"))
    name, source = selection.pseudo_queries(experiment, experiment_settings := cranfield().selection.pseudo_queries)
    assert experiment_settings.source == "auto" and source == "title"  # Cranfield's documents have titles
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
    assert selection.pseudo_queries(again, experiment_settings) == (name, "title")
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
    # stability scores the α values with a neighbour each side: 0.5 alone of 0, 0.5, 1
    assert len(choice.curve) == {"pseudo_queries": 3 * len(cfg.lam.grid), "stability": 1, "nqc": 3}[method]
    if method != "pseudo_queries":  # stability and NQC cannot choose λ
        assert choice.lam == cfg.selection.lam
    assert "test (unlabeled)" in choice.criterion or method == "pseudo_queries"
    assert max(row["value"] for row in choice.curve) == next(
        row["value"] for row in choice.curve if (row["alpha"], row["lam"]) == (choice.alpha, choice.lam)
    )


def test_nqc_on_cranfield_is_the_spread_of_the_merged_models_raw_scores_over_its_corpus_sample_score(cranfield):
    """Recomputed from the cached raw scores of Θ' at each α: the top 10 of each query's candidates, and its mean
    score over the 20 sampled documents, the same documents for every query."""
    cfg = cranfield("selection=nqc", "selection.queries=test")
    experiment = open_experiment(cfg)
    choice = selection.choose(experiment, cfg)
    name = "test (unlabeled)"
    sample = experiment.candidates(f"{name} × corpus sample (20)")
    assert len({tuple(sorted(docs)) for docs in sample.values()}) == 1 and len(next(iter(sample.values()))) == 20
    for row in choice.curve:
        weights = system_weights("task_arithmetic", experiment.spec.merge.at(row["alpha"]))
        scores, corpus = experiment.scores(name, weights), experiment.scores(f"{name} × corpus sample (20)", weights)
        expected = [np.std(sorted(scores[q].values())[-10:]) / abs(np.mean(list(corpus[q].values()))) for q in scores]
        assert row["value"] == pytest.approx(np.mean(expected), rel=1e-9) and row["undefined"] == 0
        assert row["lam"] == cfg.selection.lam
    assert "corpus score: 20 documents" in choice.criterion


def untitled_beir(folder):
    """A BEIR-layout collection as preprocessed corpora are: no title, lowercased, no punctuation at all."""
    rng = np.random.default_rng(0)
    vocabulary = [f"{stem}{i}" for stem in ("flow", "wing", "heat", "shock", "plate") for i in range(40)]
    folder.mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choice(vocabulary, size=35 + i % 7))} for i in range(60)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": f"q{i}", "text": " ".join(rng.choice(vocabulary, size=5))} for i in range(6)]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels").mkdir()
    qrels = "".join(f"q{i}\td{i}\t1\n" for i in range(6))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return {d["_id"]: d["text"] for d in docs}


def test_pseudo_queries_default_to_word_spans_where_documents_have_no_title_and_no_punctuation(triple, tmp_path):
    texts = untitled_beir(tmp_path / "untitled")

    def config(*overrides):
        return compose(
            [
                "dataset=beir",
                "dataset.name=untitled",
                f"dataset.beir_path={tmp_path / 'untitled'}",
                "retriever.top_k=5",
                f"cache.dir={tmp_path / 'cache'}",
                "model.scorer.show_progress=false",
                *(f"model.{role}={path}" for role, path in triple.items()),
                "selection=pseudo_queries",
                "selection.alphas=[0.0,0.5,1.0]",
                "selection.pseudo_queries.count=20",
                *overrides,
            ]
        )

    for explicit in ("title", "sentence"):  # what the default (title) did before: no pair of either kind
        with pytest.raises(ValueError, match=f"selection.pseudo_queries.source: the documents give no {explicit}"):
            selection.pseudo_queries(
                open_experiment(config()),
                config(f"selection.pseudo_queries.source={explicit}").selection.pseudo_queries,
            )
    cfg = config()
    experiment = open_experiment(cfg)
    choice = selection.choose(experiment, cfg)
    assert choice.details == {"pseudo_queries_source": "span"} and "(span)" in choice.criterion
    name = next(n for n in experiment.first_stage._splits if n.startswith("pseudo-queries"))
    split = experiment.split(name)
    assert len(split.queries) == 20
    for query_id, query in split.queries.items():
        (relevant,) = split.qrels[query_id]
        source, span = relevant.split(selection.REST)
        words = texts[source].split()
        start = int(span) * SPAN_WORDS  # the span's index in its document's pieces of SPAN_WORDS words
        assert query.split() == words[start : start + SPAN_WORDS]
        rest = words[:start] + words[start + SPAN_WORDS :]
        assert experiment.texts(name)[relevant].split() == rest
    assert choice.alpha in (0.0, 0.5, 1.0) and len(choice.curve) == 3 * len(cfg.lam.grid)
    assert choice.describe()["pseudo_queries_source"] == "span"


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
    assert selection.pseudo_query_source(documents) == source


@pytest.mark.slow  # a whole selection job, W&B included
def test_a_cross_validation_job_reports_each_folds_setting_never_their_mean(cranfield, tmp_path, capsys):
    from taskvec_ir.runs.job import run_job

    cfg = cranfield("selection=cross_validation", "wandb.mode=disabled")
    result = run_job(cfg, tmp_path / "job")
    written = json.loads((tmp_path / "job" / "selection.json").read_text())
    folds = [(fold["alpha"], fold["lam"]) for fold in written["folds"]]
    assert len(folds) == 5 and result["folds"] == written["folds"]
    printed = capsys.readouterr().out
    if len(set(folds)) > 1:  # what ran: each fold's α/λ, and no single α
        assert written["alpha"] is None or written["lam"] is None
        assert "α/λ per fold: " + " ".join(f"{a:g}/{lam:g}" for a, lam in folds) in printed
    else:
        assert (written["alpha"], written["lam"]) == folds[0] and f"α={folds[0][0]:g}" in printed
    metrics = json.loads((tmp_path / "job" / "metrics.json").read_text())
    assert metrics["selection"]["folds"] == written["folds"] and "curve" not in metrics["selection"]
    # ΘT's own λ in each fold: the λ of the grid best for ΘT on the other folds' queries
    experiment = open_experiment(cfg)
    split = experiment.split(cfg.split)
    per_lam = {
        lam: evaluation.evaluate_run(split.qrels, experiment.system_run(cfg.split, "ir_model", lam), [cfg.objective])[1]
        for lam in cfg.lam.grid
    }
    fold_ids = selection.kfold(split.queries, cfg.selection.folds, cfg.selection.seed)
    for fold, ids in zip(written["folds"], fold_ids, strict=True):
        others = [q for q in split.qrels if split.qrels[q] and q not in ids]
        values = {lam: sum(v[cfg.objective][q] for q in others) / len(others) for lam, v in per_lam.items()}
        assert fold["lam[ir_model]"] == max(values, key=lambda lam: (values[lam], -lam))
    own = {fold["lam[ir_model]"] for fold in written["folds"]}
    assert metrics["lam"]["ir_model"] == (own.pop() if len(own) == 1 else None) and metrics["lam"]["bm25"] is None
