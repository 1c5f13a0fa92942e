"""The results tables: a sweep's report, and the sections of a table of cells, from constructed rows as
``runs.table`` compiles them (marks, bold, α and Δ notes, mean rows, failures)."""

import csv

import pytest

from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.reporting.rendering import csv_text, latex, markdown
from taskvec_ir.reporting.results_tables import (
    cells_table,
    depth_note,
    general_domain_table,
    label_free_distance,
    results_table,
    shown_measures,
)
from taskvec_ir.reporting.significance import compare


def test_a_sweeps_report_marks_the_direction_of_each_significant_difference_and_names_the_test():
    """Task arithmetic above BM25 on every query, below α=1 on every query, around ΘT: ▲‡▼§ under the exact
    randomization test (8 queries: p = 2/256, times 3 baselines)."""
    bm25 = [0.20, 0.30, 0.25, 0.40, 0.35, 0.30, 0.20, 0.45]
    ir = [b + 0.1 for b in bm25]
    ta = [i + n for i, n in zip(ir, [0.03, -0.02, 0.04, 0.01, -0.01, 0.02, 0.03, 0.00], strict=True)]
    alpha_one = [v + 0.05 + 0.01 * (i % 3) for i, v in enumerate(ta)]
    values = {"bm25": bm25, "ir_model": ir, "alpha_one": alpha_one, "task_arithmetic": ta}
    per_query = {s: {"ndcg@10": {f"q{i}": v for i, v in enumerate(found)}} for s, found in values.items()}
    settings = SignificanceConfig(test="randomization")
    (compared,) = compare([per_query], {"task_arithmetic": ["ir_model", "bm25", "alpha_one"]}, ["ndcg@10"], settings)
    assert compared["task_arithmetic"].p_values["bm25"]["ndcg@10"] == pytest.approx(3 * 2 / 256)
    means = {s: {"ndcg@10": sum(found) / len(found)} for s, found in values.items()}
    lambdas = {"bm25": None, "ir_model": 0.2, "alpha_one": 0.4, "task_arithmetic": 0.3}
    table = results_table(means, compared["task_arithmetic"], "task_arithmetic", ["ndcg@10"], settings, lambdas)
    text = markdown(table)
    assert f"| BM25 | – | {means['bm25']['ndcg@10']:.4f} |" in text
    assert f"| ΘT | 0.2 | {means['ir_model']['ndcg@10']:.4f} |" in text
    assert f"| TA | 0.3 | {means['task_arithmetic']['ndcg@10']:.4f}▲‡▼§ |" in text  # better than BM25, worse than α=1
    assert "▲x / ▼x: significantly better / worse than the baseline marked x († ΘT, ‡ BM25, § α=1)" in text
    assert "Fisher's paired randomization test" in text and "Bonferroni over 3 baselines" in text
    assert "p < 0.05" in text
    marks = r"$^{\blacktriangle\ddagger\blacktriangledown\S}$"
    assert f"TA & 0.3 & {means['task_arithmetic']['ndcg@10']:.4f}{marks}" in latex(table)
    holm = SignificanceConfig(correction="holm")
    (compared,) = compare([per_query], {"task_arithmetic": ["ir_model", "bm25", "alpha_one"]}, ["ndcg@10"], holm)
    report = results_table(means, compared["task_arithmetic"], "task_arithmetic", ["ndcg@10"], holm, lambdas)
    assert "Holm over the row's 3 tests of each measure" in report.footnote


def cell_row(selection, system, ndcg, alpha=0.4, dataset="d", model="m", failed=None, **p_values):
    """A row of ``runs.table.rows``; ``p_values``: baseline -> its corrected p-value on ndcg@10."""
    return {
        "dataset": dataset,
        "model": model,
        "merge": "task_arithmetic",
        "selection": selection,
        "system": system,
        "alpha": alpha,
        "lam": 0.2,
        "queries": None if failed else 30,
        "ndcg@10": ndcg,
        **{f"p_vs_{b}[ndcg@10]": p_values.get(b) for b in ("ir_model", "bm25", "alpha_one")},
        "folds": "0.3/0.2 0.5/0.2" if selection == "cross_validation" else None,
        "warnings": None,
        "failed": failed,
    }


def test_the_compiled_table_marks_direction_bolds_the_best_of_each_model_and_shows_alpha_and_delta():
    found = [
        cell_row("cross_validation", "bm25", 0.30),
        cell_row("cross_validation", "ir_model", 0.40, bm25=0.001),
        cell_row("cross_validation", "alpha_one", 0.35, ir_model=0.2, bm25=0.04),
        cell_row("cross_validation", "task_arithmetic", 0.45, ir_model=0.01, bm25=0.0001, alpha_one=0.02),
        cell_row("nqc", "bm25", 0.30),
        cell_row("nqc", "ir_model", 0.40),
        cell_row("nqc", "alpha_one", 0.35),
        cell_row("nqc", "task_arithmetic", 0.38, ir_model=0.03, bm25=0.06, alpha=1.0),
        # a second model on the same rows: its own best is bold too
        cell_row("cross_validation", "bm25", 0.30, model="m2"),
        cell_row("cross_validation", "ir_model", 0.20, model="m2"),
        cell_row("cross_validation", "alpha_one", 0.25, model="m2"),
        cell_row("cross_validation", "task_arithmetic", 0.28, model="m2"),
    ]
    table = cells_table(found, "ndcg@10", SignificanceConfig())
    lines = markdown(table).splitlines()
    assert lines[0].startswith("| dataset | queries | selection | m BM25 | m ΘT | m α=1 | m TA | m2 BM25 |")
    assert lines[2] == (
        "| d | 30 | 2-fold CV (no dev) | 0.3000 | 0.4000▲‡ | 0.3500▲‡ | **0.4500▲†▲‡▲§** (α 0.4, Δ +12.5%) "
        "| **0.3000** | 0.2000 | 0.2500 | 0.2800 (α 0.4, Δ +40.0%) |"
    )
    assert lines[3].startswith("| d | 30 | NQC | 0.3000 | **0.4000** | 0.3500 | 0.3800▼† (α 1, Δ -5.0%) |")
    assert "Paired t-test, two-sided" in table.footnote.replace("paired", "Paired")
    assert "Bonferroni over each value's baselines" in table.footnote
    distance = markdown(label_free_distance(found, "ndcg@10")).splitlines()
    assert distance[2] == "| d | m | NQC | 1 | +0.6 | 0.3800 | -0.0700 |"
    written = latex(table)
    marks = r"$^{\blacktriangle\dagger\blacktriangle\ddagger\blacktriangle\S}$"
    assert r"\textbf{0.4500" + marks + r"} ($\alpha$ 0.4, $\Delta$ +12.5\%)" in written
    holm = cells_table(found, "ndcg@10", SignificanceConfig(correction="holm")).footnote
    assert "Holm over the distinct tests of each table cell (dataset × model × merge) on the measure" in holm
    assert "No mark was reachable" not in holm


def test_the_footnote_names_the_family_its_size_the_permutations_and_where_no_mark_was_reachable():
    """Rows carry the family of their tests (``runs.table``): its distinct tests, the randomization test's
    permutations and whether a mark was reachable; the footnote says them."""
    settings = SignificanceConfig(test="randomization", correction="holm")
    families = {"d": (12, 10000, True), "e": (21, 10000, True), "f": (30, 11999, False)}
    found = []
    for dataset, (tests, permutations, markable) in families.items():
        for system in PAPER_ORDER:
            row = cell_row("nqc", system, 0.4, dataset=dataset)
            tested = system != "bm25"
            row.update({"tests[ndcg@10]": tests if tested else None, "markable[ndcg@10]": markable if tested else None,
                        "permutations[ndcg@10]": permutations if tested else None})  # fmt: skip
            found.append(row)
    note = cells_table(found, "ndcg@10", settings).footnote
    assert "Fisher's paired randomization test (10,000 permutations, raised to up to 11,999 for the larger" in note
    assert "Holm over the distinct tests of each table cell (dataset × model × merge) on the measure" in note
    assert "(12–30 tests per family)" in note
    assert "No mark was reachable for f/m/task_arithmetic: the exact randomization test" in note


def test_a_mean_row_per_selection_averages_the_datasets_that_ran():
    found = [
        *(cell_row("nqc", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
        *(cell_row("nqc", s, v, dataset="b") for s, v in zip(PAPER_ORDER, (0.4, 0.2, 0.3, 0.3), strict=True)),
        *(cell_row("stability", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
        *(cell_row("stability", s, None, dataset="b", failed="boom") for s in PAPER_ORDER),
    ]
    lines = markdown(cells_table(found, "ndcg@10", SignificanceConfig())).splitlines()
    assert [line for line in lines if line.startswith("| mean")] == [
        "| mean (2 datasets) |  | NQC | 0.3000 | 0.3000 | 0.3000 | **0.4000** (Δ +33.3%) |",
        "| mean (2 datasets) |  | stability | – | – | – | – |",  # b failed: no mean
    ]


def test_the_labelled_rows_share_one_mean_row_and_a_one_dataset_selection_has_none():
    found = [
        *(cell_row("dev", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
        *(
            cell_row("cross_validation", s, v, dataset="b")
            for s, v in zip(PAPER_ORDER, (0.4, 0.2, 0.3, 0.3), strict=True)
        ),
        *(cell_row("nqc", s, v, dataset="a") for s, v in zip(PAPER_ORDER, (0.2, 0.4, 0.3, 0.5), strict=True)),
    ]
    lines = markdown(cells_table(found, "ndcg@10", SignificanceConfig())).splitlines()
    assert [line for line in lines if line.startswith("| mean")] == [
        "| mean (2 datasets) |  | labels (dev, else CV) | 0.3000 | 0.3000 | 0.3000 | **0.4000** (Δ +33.3%) |",
    ]


def test_folds_that_chose_differently_show_varies_and_a_failed_selection_shows_failed():
    found = [
        *(
            cell_row("cross_validation", s, v, alpha=None)
            for s, v in zip(PAPER_ORDER, (0.3, 0.4, 0.35, 0.45), strict=True)
        ),
        *(cell_row("stability", s, None, alpha=None, failed="ValueError: too few α") for s in PAPER_ORDER),
        *(cell_row("nqc", s, v, alpha=0.5) for s, v in zip(PAPER_ORDER, (0.3, 0.4, 0.35, 0.38), strict=True)),
    ]
    table = cells_table(found, "ndcg@10", SignificanceConfig())
    lines = markdown(table).splitlines()
    assert lines[2] == "| d | 30 | 2-fold CV (no dev) | 0.3000 | 0.4000 | 0.3500 | **0.4500** (α varies, Δ +12.5%) |"
    assert lines[3] == "| d | – | stability | failed | failed | failed | failed |"
    assert "- d/m/task_arithmetic stability: ValueError: too few α" in lines
    distance = markdown(label_free_distance(found, "ndcg@10")).splitlines()
    assert distance[2:] == ["| d | m | NQC | 0.5 | varies | 0.3800 | -0.0700 |"]  # stability: failed, left out
    assert r"failed & failed" in latex(table)
    assert list(csv.DictReader(csv_text(found).splitlines()))[4]["failed"] == "ValueError: too few α"


def general_row(system, ndcg, alpha, lam=0.5, selection="dev", folds=None, general_folds=None, failed=None, **p):
    """A row of ``runs.table.general_rows``; ``p``: baseline -> its corrected p-value on ndcg@10."""
    return {
        "general_domain": "cranfield",
        "dataset": "scifact",
        "model": "m",
        "merge": "task_arithmetic",
        "selection": selection,
        "system": system,
        "alpha": {"bm25": None, "ir_model": 0.0, "alpha_one": 1.0}.get(system, alpha),
        "lam": None if system == "bm25" else lam,
        "queries": None if failed else 225,
        "ndcg@10": ndcg,
        **{f"p_vs_{b}[ndcg@10]": p.get(b) for b in ("ir_model", "bm25", "alpha_one")},
        "folds": folds,
        "general_folds": general_folds,
        "warnings": None,
        "failed": failed,
    }


def setting(alpha, values, **kwargs):
    """The four systems' rows of one setting: ``values`` in ``PAPER_ORDER``; TA and α=1 tested against ΘT."""
    p = kwargs.pop("p", {})
    return [
        general_row(s, v, alpha, **kwargs, **({"ir_model": p[s]} if s in p else {}))
        for s, v in zip(PAPER_ORDER, values, strict=True)
    ]


def test_the_general_section_shows_each_choices_delta_against_theta_t_with_its_direction():
    folds = "0.5/0.4 0.5/0.4 1/0.4"
    found = [
        *setting(0.25, (0.30, 0.40, 0.35, 0.38), p={"alpha_one": 0.001, "task_arithmetic": 0.2}),
        *setting(0.0, (0.30, 0.40, 0.35, 0.40), selection="stability", lam=0.3),
        # cross-validation whose folds chose two settings: a row for each, saying how many folds chose it
        *setting(
            0.5,
            (0.30, 0.40, 0.35, 0.42),
            selection="cross_validation",
            lam=0.4,
            folds=folds,
            general_folds="2 of 3",
            p={"task_arithmetic": 0.01},
        ),  # fmt: skip
        *setting(
            1.0, (0.30, 0.40, 0.35, 0.35), selection="cross_validation", lam=0.4, folds=folds, general_folds="1 of 3"
        ),  # fmt: skip
        *(general_row(s, None, 0.75, selection="nqc", failed="ValueError: boom") for s in PAPER_ORDER),
    ]
    section = general_domain_table(found, "cranfield", "ndcg@10", SignificanceConfig())
    lines = markdown(section).splitlines()
    assert lines[0] == "| dataset | model | selection | α | λ | BM25 | ΘT | α=1 | TA | Δ | Δ% |"
    assert lines[2:7] == [
        "| scifact | m | dev | 0.25 | 0.5 | 0.3000 | 0.4000 | 0.3500▼† | 0.3800 | -0.0200 | -5.0% |",
        "| scifact | m | stability | 0 | 0.3 | 0.3000 | 0.4000 | 0.3500 | 0.4000 | +0.0000 | +0.0% |",
        "| scifact | m | 3-fold CV (no dev) | 0.5 (2 of 3 folds) | 0.4 | 0.3000 | 0.4000 | 0.3500 | 0.4200▲† | +0.0200 "
        "| +5.0% |",
        "| scifact | m | 3-fold CV (no dev) | 1 (1 of 3 folds) | 0.4 | 0.3000 | 0.4000 | 0.3500 | 0.3500 | -0.0500 "
        "| -12.5% |",
        "| scifact | m | NQC | 0.75 | 0.5 | failed | failed | failed | failed | – | – |",
    ]
    assert "ndcg@10 on the test queries of cranfield (225)" in section.footnote
    assert "paired t-test, two-sided" in section.footnote and "α=1 and TA are tested against ΘT" in section.footnote
    assert "- cranfield/m/task_arithmetic nqc: ValueError: boom" in section.footnote
    assert r"0.4200$^{\blacktriangle\dagger}$" in latex(section)
    holm = general_domain_table(found, "cranfield", "ndcg@10", SignificanceConfig(correction="holm"))
    assert "Holm over the distinct tests of each cell (dataset × model × merge) on the measure" in holm.footnote
    # table.csv holds the main rows and these: every key of either is a column, empty where a row has none
    main = {k: v for k, v in found[0].items() if k not in ("general_domain", "general_folds")}
    written = list(csv.DictReader(csv_text([main, *found]).splitlines()))
    assert written[0]["general_domain"] == "" and written[1]["general_domain"] == "cranfield"
    assert written[9]["general_folds"] == "2 of 3" and float(written[12]["ndcg@10"]) == 0.42


def test_a_table_does_not_show_a_measure_re_ranking_cannot_move_and_says_why():
    """precision@10 of BM25's top 10, re-ranked: the same 10 documents in any order, one value for every system."""
    measures = ["ndcg@10", "precision@10", "map@100"]
    assert shown_measures("ndcg@10", measures, RetrieverConfig(top_k=10)) == ["ndcg@10"]
    assert shown_measures("ndcg@10", measures, RetrieverConfig(top_k=20)) == ["ndcg@10", "precision@10"]
    assert shown_measures("ndcg@10", measures, RetrieverConfig(dense=True, index="faiss", top_k=10)) == [
        "ndcg@10", "precision@10"]  # fmt: skip
    assert shown_measures("precision@10", measures, RetrieverConfig(top_k=10)) == ["precision@10", "ndcg@10"]
    note = depth_note(measures, RetrieverConfig(top_k=10), table=True)
    assert "precision@10: a measure of the top k as a set with k ≥ 10, the candidates re-ranked" in note
    assert "(not shown unless it is the objective; table.csv has it)" in note
    assert "map@100: cut deeper than the 10 documents retrieved (retriever.top_k)." in note
    assert depth_note(["ndcg@10"], RetrieverConfig(top_k=10), table=False) == ""


def test_the_demo_table_re_ranks_deep_enough_that_its_second_measure_can_move():
    from taskvec_ir.runs.compose import compose

    cfg = compose(["experiment=table_demo"])
    assert cfg.retriever.top_k == 20
    assert shown_measures(cfg.objective, cfg.measures, cfg.retriever) == ["ndcg@10", "precision@10"]


def test_the_label_free_distance_names_the_merge_where_a_table_has_several():
    """τ and its random-direction null in one table: each label-free row against its own merge's labelled choice,
    the merge named (without it the two rows of a cell look alike)."""
    found = []
    for merge, (labelled, chosen) in {"task_arithmetic": (0.40, 0.38), "random": (0.41, 0.41)}.items():
        for selection, ndcg, alpha in (("cross_validation", labelled, 0.0), ("nqc", chosen, 1.0)):
            found.append({**cell_row(selection, "task_arithmetic", ndcg, alpha=alpha), "merge": merge})
    distance = markdown(label_free_distance(found, "ndcg@10")).splitlines()
    assert distance[0].startswith("| dataset | model | merge | selection | α |")
    assert distance[2:] == [
        "| d | m | task_arithmetic | NQC | 1 | +1 | 0.3800 | -0.0200 |",
        "| d | m | random | NQC | 1 | +1 | 0.4100 | +0.0000 |",
    ]
