"""A table's general domain (``table.general_domain``): every cell's merged model evaluated on another collection at
each α and λ its selections chose, compiled into a section of Δ against ΘT. The plan and the section are tested
without running anything; the table end to end on a BEIR folder with real Cranfield as the general domain."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from taskvec_ir.config.composed import CONFIG_DIR, register
from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import PAPER_ORDER
from taskvec_ir.errors import UserError
from taskvec_ir.reporting import tables
from taskvec_ir.runs import table
from taskvec_ir.runs.compose import typed_config

from beir_folders import write_beir_folder
from wandb_records import logged_table

register()
TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"


def hydra_compose(overrides):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("config", overrides=overrides)


def general_row(system, ndcg, alpha, lam=0.5, selection="dev", folds=None, general_folds=None, failed=None, **p):
    """A row of ``Grid.general_rows``; ``p``: baseline -> its corrected p-value on ndcg@10."""
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
    section = tables.general_domain_table(found, "cranfield", "ndcg@10", SignificanceConfig())
    lines = tables.markdown(section).splitlines()
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
    assert r"0.4200$^{\blacktriangle\dagger}$" in tables.latex(section)
    holm = tables.general_domain_table(found, "cranfield", "ndcg@10", SignificanceConfig(correction="holm"))
    assert "Holm over all of this section's tests" in holm.footnote
    # table.csv holds the main rows and these: every key of either is a column, empty where a row has none
    main = {k: v for k, v in found[0].items() if k not in ("general_domain", "general_folds")}
    written = list(csv.DictReader(tables.csv_text([main, *found]).splitlines()))
    assert written[0]["general_domain"] == "" and written[1]["general_domain"] == "cranfield"
    assert written[9]["general_folds"] == "2 of 3" and float(written[12]["ndcg@10"]) == 0.42


@pytest.fixture(scope="module")
def general_demo():
    """The general-domain demo's config, cells and general domains (SciFact cells, Cranfield as the general)."""
    overrides = ["experiment=general_domain_demo"]
    cfg = typed_config(hydra_compose(overrides))
    compose_cell = lambda extra: hydra_compose([*overrides, *extra])  # noqa: E731
    return cfg, table.cells(cfg, compose_cell), table.general_domains(cfg, compose_cell)


def done_selection(grid, cell, selection, folds):
    """What a done selection job leaves that the plan reads: its metrics.json, each fold's α and λ."""
    folder = grid.result_dir(cell, selection)
    folder.mkdir(parents=True)
    chosen = [{"queries": 1, "alpha": alpha, "lam": lam} for alpha, lam in folds]
    (folder / "metrics.json").write_text(json.dumps({"selection": {"folds": chosen}}))


def test_each_choice_of_a_cell_is_one_general_domain_job_run_per_lambda_and_resumed(general_demo, tmp_path):
    cfg, found, general = general_demo
    assert [c.name for c in found] == [
        "scifact/minilm_demo/task_arithmetic",
        "scifact/minilm_scifact_adapted/task_arithmetic",
    ]
    assert [g.name for g in general] == [
        "general/cranfield/minilm_demo/task_arithmetic",
        "general/cranfield/minilm_scifact_adapted/task_arithmetic",
    ]
    demo = general[0]
    assert demo.overrides == (
        "dataset=cranfield",
        "model=minilm_demo",
        "merge=task_arithmetic",
        "systems=[bm25,ir_model,alpha_one,task_arithmetic]",
    )
    assert demo.covers(found[0]) and not demo.covers(found[1])  # its own model's cells only
    carve_out = typed_config(hydra_compose(["dataset=cranfield_split"]))  # a part of the general collection:
    assert not demo.covers(table.Cell("cranfield_split", "minilm_demo", "task_arithmetic", (), carve_out))  # no other
    grid = table.Grid(cfg, tmp_path, ["experiment=general_domain_demo"], found, [], general)
    scifact = found[0]
    # dev chose (0.25, 0.8); stability and nqc (0.5, 0.3) and (0.25, 0.3); pseudo-queries is not done yet
    dev = grid.cell_dir(scifact) / "dev"
    (dev / "final").mkdir(parents=True)
    (dev / "final" / "metrics.json").write_text("{}")
    (dev / "optimization_results.yaml").write_text(
        yaml.safe_dump({"best_params": {"alpha.value": 0.25}, "best_lam": 0.8})
    )
    done_selection(grid, scifact, "stability", [(0.5, 0.3)])
    done_selection(grid, scifact, "nqc", [(0.25, 0.3)])
    assert grid.general_missing(demo) == [(0.25, 0.8), (0.5, 0.3), (0.25, 0.3)]
    steps = grid.general_steps(demo)
    assert [name for name, _ in steps] == ["lam_0.8", "lam_0.3"]  # one multirun per λ, a job per α
    overrides = steps[1][1]
    assert overrides[:2] == ["-m", "experiment=general_domain_demo"] and "dataset=cranfield" in overrides
    assert "alpha.value=0.5,0.25" in overrides and "lam.value=0.3" in overrides and "task=evaluate" in overrides
    assert f"hydra.sweep.dir={tmp_path / demo.name}" in overrides
    assert "hydra.sweep.subdir=alpha_${alpha.value}-lam_${lam.value}" in overrides
    assert grid.general_dir(demo, (0.5, 0.3)) == tmp_path / demo.name / "alpha_0.5-lam_0.3"
    assert grid.general_steps(general[1]) == []  # the adapted model's cell has chosen nothing yet
    # Resume: a setting whose job wrote metrics.json is done.
    (grid.general_dir(demo, (0.25, 0.8))).mkdir(parents=True)
    (grid.general_dir(demo, (0.25, 0.8)) / "metrics.json").write_text("{}")
    assert [name for name, _ in grid.general_steps(demo)] == ["lam_0.3"]
    assert grid.general_failure(demo, (0.5, 0.3)) == "not run"


def test_a_general_domain_with_other_settings_is_refused_and_a_misspelt_one_fails_before_anything_runs(tmp_path):
    overrides = ["experiment=general_domain_demo"]
    cfg = typed_config(hydra_compose(overrides))

    def grid(*extra):
        compose_cell = lambda more: hydra_compose([*overrides, *extra, *more])  # noqa: E731
        return table.Grid(
            cfg, tmp_path, [], table.cells(cfg, compose_cell), [], table.general_domains(cfg, compose_cell)
        )

    grid().check_settings()
    assert "general/cranfield/minilm_demo/task_arithmetic" in json.loads((tmp_path / "settings.json").read_text())
    with pytest.raises(UserError, match=r"general-domain evaluation general/cranfield/minilm_demo/task_arithmetic "
                       r"was run with other settings \(dataset.relevance_map"):  # fmt: skip
        grid("dataset.relevance_map=null").check_settings()
    misspelt = typed_config(hydra_compose([*overrides, "+table.general_domain.cranfeld=[]"]))
    with pytest.raises(UserError, match=r"table.general_domain.cranfeld \(dataset=cranfeld model=minilm_demo"):
        table.general_domains(misspelt, lambda extra: hydra_compose([*overrides, *extra]))


TINY = 6  # BEIR-folder test queries of the table's one cell


@pytest.mark.slow
def test_a_table_evaluates_each_cells_choices_on_cranfield_as_a_direct_run_would(triple, mirror_dir, tmp_path):
    """A BEIR folder without dev (cross-validated) and stability, which can only choose α = 0 from [-1, 0, 1];
    Cranfield the general domain: its numbers are a direct ``taskvec-ir dataset=cranfield`` run's, and at α = 0 TA
    is ΘT exactly."""
    folder = write_beir_folder(tmp_path / "mine", {"test": TINY})
    model = ["model=minilm_demo", *(f"model.{role}={path}" for role, path in triple.items())]
    shared = [*model, "retriever.top_k=10", "model.scorer.max_length=64", "model.scorer.show_progress=false",
              f"cache.dir={tmp_path / 'cache'}", "lam.grid=[0.0,0.5,1.0]"]  # fmt: skip
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir)}

    def taskvec_ir(*overrides):
        done = subprocess.run([str(TASKVEC_IR), *shared, *overrides], capture_output=True, text=True, env=env,
                              cwd=tmp_path, stdin=subprocess.DEVNULL, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    taskvec_ir(
        "task=table",
        "table.name=gd",
        f"table.dir={tmp_path / 'gd'}",
        f"+table.datasets.mine=['dataset=beir','dataset.name=mine','dataset.beir_path={folder}']",
        f"+table.models.tiny=[{','.join(repr(o) for o in model)}]",
        "table.selections=[stability]",
        "+table.general_domain.cranfield=[]",
        "selection.alphas=[-1.0,0.0,1.0]",
        "selection.folds=2",
    )
    with open(tmp_path / "gd" / "table.csv") as lines:
        general = [r for r in csv.DictReader(lines) if r["general_domain"] == "cranfield"]
    by_choice: dict[tuple, dict] = {}
    for r in general:
        by_choice.setdefault((r["selection"], r["general_folds"]), {})[r["system"]] = r
    stability = by_choice[("stability", "")]
    assert float(stability["task_arithmetic"]["alpha"]) == 0.0 and float(stability["task_arithmetic"]["lam"]) == 0.3
    assert stability["task_arithmetic"]["ndcg@10"] == stability["ir_model"]["ndcg@10"]  # Δ = 0, exactly
    assert float(stability["task_arithmetic"]["p_vs_ir_model[ndcg@10]"]) == 1.0
    assert all(r["queries"] == "225" for r in general)
    assert {s for s, _ in by_choice} == {"cross_validation", "stability"}
    # A direct run at each setting the cells chose gives the section's numbers.
    for rows in by_choice.values():
        alpha, lam = rows["task_arithmetic"]["alpha"], rows["task_arithmetic"]["lam"]
        out = tmp_path / f"direct-{alpha}-{lam}"
        taskvec_ir("dataset=cranfield", f"alpha.value={alpha}", f"lam.value={lam}", f"hydra.run.dir={out}",
                   "systems=[bm25,ir_model,alpha_one,task_arithmetic]")  # fmt: skip
        direct = json.loads((out / "metrics.json").read_text())["test"]
        for system in PAPER_ORDER:
            for measure in ("ndcg@10", "precision@10", "map@100"):
                assert float(rows[system][measure]) == pytest.approx(direct[system][measure], abs=1e-12)
    markdown = (tmp_path / "gd" / "table.md").read_text()
    assert "### General domain (cranfield): Δ against ΘT, ndcg@10" in markdown
    assert f"| mine | tiny | stability | 0 | 0.3 | {float(stability['bm25']['ndcg@10']):.4f} |" in markdown
    assert "% General domain (cranfield): Δ against ΘT, ndcg@10" in (tmp_path / "gd" / "table.tex").read_text()
    assert len(logged_table(tmp_path / "gd", "general_domain")) == len(general)
