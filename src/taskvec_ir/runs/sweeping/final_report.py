"""The report of a sweep's final evaluation: task arithmetic tested against each baseline, its tables, the choice's
dev vs test (beside another sweep's), the tuning objective against every swept key, and the study itself, added to
the final job's outputs."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import optuna

from taskvec_ir.config.model import SUPERVISED_LABEL
from taskvec_ir.config.sweep import SweepConfig
from taskvec_ir.config.systems import BM25, HEADINGS, IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.runs import test_guard
from taskvec_ir.runs.job import JobOutcome, report_bootstrap
from taskvec_ir.runs.sweeping import pareto
from taskvec_ir.runs.sweeping.dev_vs_test import DevVsTest, compared_sweep, dev_vs_test_table
from taskvec_ir.runs.sweeping.study_storage import absolute_storage, retry
from taskvec_ir.runs.sweeping.trials import best_trial, completed_trials
from taskvec_ir.storage.outputs import atomic_path


def final_report(storage: str | None, sweep: SweepConfig, sweep_dir: Path) -> FinalReport:
    """The report of a study's final evaluation, from its completed trials (read in the final job itself)."""
    study = retry(optuna.load_study, study_name=sweep.study.name, storage=absolute_storage(storage))
    trials = retry(completed_trials, study)
    bound = sweep.retention.bound if sweep.retention is not None else None
    best = retry(best_trial, study, bound).number
    front = {t.number for t in retry(pareto.front, study)} if sweep.retention is not None else set()
    guarded = retry(lambda: study.user_attrs.get(test_guard.SEARCH_SPACE))
    return FinalReport(trials, best, sweep_dir, absolute_storage(storage), guarded, front)


class FinalReport:
    """What the final evaluation adds to its job: tests of task arithmetic against each baseline (``significance``:
    paired t-test, Bonferroni, by default; each fused baseline at its own λ, tuned as task arithmetic's), its results
    table with their marks (in the job's results.md, and as LaTeX), the choice's objective on the tuning split and on
    test (beside ``sweep.compare_with``'s), the tuning objective against every swept key (plot and W&B table), ‖τ‖
    per layer, the report with the study as a W&B artifact, and whether the study's search space was set after test
    results of its cell had been seen (``test_guard``: the header, metrics.json, W&B's config and summary)."""

    FILES = (
        "results.md",
        "results.tex",
        "significance.json",
        "per_query.json",
        "metrics.json",
        "task_vector_layers.png",
    )

    def __init__(
        self,
        trials: list[dict],
        best_trial: int,
        sweep_dir: Path,
        storage: str | None,
        search_space: dict | None,
        front=frozenset(),
    ):
        self.trials, self.best_trial, self.sweep_dir, self.storage = trials, best_trial, sweep_dir, storage
        self.search_space = search_space  # the study's search-space record (test_guard.set_search_space)
        self.front = front  # a Pareto sweep's front (trial numbers)

    def __call__(self, outcome: JobOutcome, run) -> str:
        from taskvec_ir.ir.evaluation import evaluate_run
        from taskvec_ir.reporting import rendering, tracking
        from taskvec_ir.reporting.lineage import Artifact
        from taskvec_ir.reporting.plots import heading, layer_norms_plot, sensitivity, sensitivity_plot
        from taskvec_ir.reporting.results_tables import depth_note, results_table
        from taskvec_ir.reporting.significance import compare
        from taskvec_ir.storage.outputs import write_json

        cfg, out_dir, means = outcome.cfg, outcome.out_dir, outcome.means
        baselines = [s for s in cfg.systems if s != TASK_ARITHMETIC]
        (compared,) = compare([outcome.per_query], {TASK_ARITHMETIC: baselines}, cfg.measures, cfg.significance)
        depth = depth_note(cfg.measures, cfg.retriever, table=False)
        results = results_table(
            means,
            compared[TASK_ARITHMETIC],
            TASK_ARITHMETIC,
            cfg.measures,
            cfg.significance,
            outcome.extra["lam"],
            depth,
        )
        write_json(compared[TASK_ARITHMETIC].p_values, out_dir / "significance.json")
        (best,) = [t for t in self.trials if t["number"] == self.best_trial]
        chosen = ", ".join(
            f"{'α' if key == 'alpha.value' else key} = {value:g}" if isinstance(value, float) else f"{key} = {value}"
            for key, value in best["params"].items()
            if key != "lam.value"
        )
        header = (
            f"{cfg.model.name} on {cfg.dataset.name} {cfg.split}: {chosen}, "
            + ("dense retrieval (no fusion) " if outcome.lam is None else f"λ = {outcome.lam:g} ")
            + f"(tuned on {cfg.sweep.tune_split} by {cfg.objective}, {len(self.trials)} trials)"
            + (f" · {SUPERVISED_LABEL}" if cfg.model.supervised else "")
        )
        guard = outcome.extra["test_guard"] = test_guard.summary(self.search_space)
        if guard["tuned_after_test"]:
            header += f"\nTuned after test results: {test_guard.describe(self.search_space)}"
        tracking.update_config(run, {"test_guard": guard})
        tracking.log_summary(run, {"test_guard/tuned_after_test": guard["tuned_after_test"]})
        sweeps = [DevVsTest(cfg.sweep.name, len(self.trials), best["value"], means[TASK_ARITHMETIC][cfg.objective])]
        if cfg.sweep.compare_with:
            sweeps.append(compared_sweep(cfg.sweep.compare_with, cfg))
        dev_vs_test = dev_vs_test_table(sweeps, cfg.objective, cfg.sweep.tune_split, cfg.split)
        outcome.extra["dev_vs_test"] = [asdict(row) for row in sweeps]
        outcome.table = results  # the job's results.md shows it (runs.results_page), with the header as its title
        with atomic_path(out_dir / "results.tex") as tmp:
            tmp.write_text(rendering.latex(results) + "\n" + rendering.latex(dev_vs_test))
        header = f"{header}\n\n{rendering.markdown(dev_vs_test).rstrip()}"  # below the table (results_page)
        if cfg.sweep.retention is not None:  # a Pareto sweep: the rule, the chosen trial's retention, the front
            line, front = self.pareto(cfg, run, best)
            header = f"{header}\n\n{line}\n\n{front}"
        plots = {
            "alpha_sensitivity": self.sweep_dir / "alpha_sensitivity.png",
            "task_vector_layers": out_dir / "task_vector_layers.png",
        }
        tune = cfg.sweep.tune_split
        qrels = outcome.pipeline.split(tune).qrels
        title = heading(cfg.dataset.name, cfg.model.name, tune, sum(1 for docs in qrels.values() if docs))
        references = {  # the baselines on the tuning split, each at the λ the final evaluation gives it
            HEADINGS[s]: evaluate_run(qrels, outcome.pipeline.system_run(tune, s, outcome.extra["lam"].get(s)),
                                      [cfg.objective])[0][cfg.objective]
            for s in (BM25, IR_MODEL) if s in cfg.systems
        }  # fmt: skip
        title += f" · {len(self.trials)} trials, the chosen circled"
        sensitivity_plot(self.trials, plots["alpha_sensitivity"], cfg.objective, self.best_trial, title, references)
        layer_norms_plot(outcome.merge, plots["task_vector_layers"])
        rows = [[s, *(means[s][m] for m in cfg.measures)] for s in cfg.systems]
        differences = [[r.sweep, r.trials, r.tuned, r.test, r.test - r.tuned] for r in sweeps]
        tables = {"results": (["system", *cfg.measures], rows), "dev_vs_test": (dev_vs_test.columns, differences)}
        tracking.log_report(run, plots, tables)
        if cfg.selection.bootstrap.resamples:  # the dev choice rerun on resamples of the tuning queries
            header = f"{header}\n{self.bootstrap(outcome, run, best)}"
        tracking.log_sensitivity(run, cfg.objective, *sensitivity(self.trials))
        tracking.log_summary(run, {"n_trials": len(self.trials)})
        study = cfg.sweep.study
        outcome.outputs.append(
            Artifact(
                f"report-{study.group}",
                "report",
                out_dir,
                {"study": study.name, "storage": study.storage, **best["params"]},
                upload=True,
                files=self.FILES,
            )
        )
        database = (
            self.storage.removeprefix("sqlite:///") if self.storage and self.storage.startswith("sqlite:///") else None
        )
        if database:
            outcome.outputs.append(
                Artifact(
                    f"study-{study.name}",
                    "optuna_study",
                    Path(database),
                    {"study": study.name, "n_trials": study.n_trials},
                    upload=True,
                )
            )
        return header

    def pareto(self, cfg, run, best: dict) -> tuple[str, str]:
        """A Pareto sweep's header line (the rule and the chosen trial's retention) and its front as Markdown,
        logged to W&B (the plot the sweeper drew, the table of every trial, the summary)."""
        from taskvec_ir.reporting import tracking

        retention = cfg.sweep.retention
        rows = pareto.trial_rows(self.trials, set(self.front), retention.bound, self.best_trial)
        general = f"{retention.dataset.name} {retention.split}"
        within = sum(row["within_bound"] for row in rows)
        line = (
            f"Pareto sweep of {len(rows)} trials ({len(self.front)} on the front): the best {cfg.sweep.tune_split} "
            f"{cfg.objective} of the {within} whose retention loss on {general} is at most {retention.bound:g} "
            f"(trial {self.best_trial}: retention {best['retention']:+.4f})"
        )
        plot = self.sweep_dir / "pareto_front.png"
        tables = {"pareto_trials": (pareto.COLUMNS, [[row[c] for c in pareto.COLUMNS] for row in rows])}
        tracking.log_report(run, {"pareto_front": plot} if plot.is_file() else {}, tables)
        summary = {"pareto/front_size": len(self.front), "pareto/chosen_trial": self.best_trial}
        summary.update({"pareto/retention": best["retention"], "pareto/retention_bound": retention.bound})
        tracking.log_summary(run, summary)
        return line, pareto.front_markdown(rows, cfg.objective, general, retention.bound)

    def bootstrap(self, outcome: JobOutcome, run, best: dict) -> str:
        """The sweep's choice rerun on resamples of its tuning split's queries (``pipeline.bootstrap``)."""
        from taskvec_ir.pipeline import bootstrap
        from taskvec_ir.reporting import tracking

        cfg = outcome.cfg
        alphas = [t["params"]["alpha.value"] for t in self.trials]
        chosen = ([(best["params"]["alpha.value"], outcome.lam)], [outcome.extra["lam"].get(IR_MODEL)])
        problem = bootstrap.sweep_problem(outcome.pipeline, cfg, alphas, chosen)
        line, summary = report_bootstrap(problem, cfg, outcome.out_dir, run)
        tracking.log_summary(run, summary)
        return line
