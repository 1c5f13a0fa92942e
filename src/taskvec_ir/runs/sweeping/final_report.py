"""The report of a sweep's final evaluation: task arithmetic tested against each baseline, its tables, the
tuning objective against every swept key, and the study itself, added to the final job's outputs."""

from __future__ import annotations

from pathlib import Path

import optuna

from taskvec_ir.config.model import SUPERVISED_LABEL
from taskvec_ir.config.systems import IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.runs import test_guard
from taskvec_ir.runs.job import JobOutcome, report_bootstrap
from taskvec_ir.runs.sweeping.study_storage import absolute_storage, retry
from taskvec_ir.runs.sweeping.trials import STATES, best_trial, trial_lam
from taskvec_ir.storage.outputs import atomic_path


def final_report(storage: str | None, study_name: str, sweep_dir: Path) -> FinalReport:
    """The report of a study's final evaluation, from its completed trials (read in the final job itself)."""
    study = retry(optuna.load_study, study_name=study_name, storage=absolute_storage(storage))
    completed = retry(study.get_trials, deepcopy=False, states=(STATES.COMPLETE,))
    trials = [{"number": t.number, "value": t.value, "lam": trial_lam(t), "params": dict(t.params)} for t in completed]
    guarded = retry(lambda: study.user_attrs.get(test_guard.SEARCH_SPACE))
    return FinalReport(trials, best_trial(study).number, sweep_dir, absolute_storage(storage), guarded)


class FinalReport:
    """What the final evaluation adds to its job: tests of task arithmetic against each baseline (``significance``:
    paired t-test, Bonferroni, by default; each fused baseline at its own λ, tuned as task arithmetic's), Markdown
    and LaTeX tables, the tuning objective against every swept key (plot and W&B table),
    ‖τ‖ per layer, the report with the study as a W&B artifact, and whether the study's search space was set after
    test results of its cell had been seen (``test_guard``: the header, metrics.json, W&B's config and summary)."""

    FILES = (
        "results.md",
        "results.tex",
        "significance.json",
        "per_query.json",
        "metrics.json",
        "task_vector_layers.png",
    )

    def __init__(
        self, trials: list[dict], best_trial: int, sweep_dir: Path, storage: str | None, search_space: dict | None
    ):
        self.trials, self.best_trial, self.sweep_dir, self.storage = trials, best_trial, sweep_dir, storage
        self.search_space = search_space  # the study's search-space record (test_guard.set_search_space)

    def __call__(self, outcome: JobOutcome, run) -> str:
        from taskvec_ir.reporting import rendering, tracking
        from taskvec_ir.reporting.lineage import Artifact
        from taskvec_ir.reporting.plots import layer_norms_plot, sensitivity, sensitivity_plot
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
        texts = {
            "results.md": f"{header}\n\n" + rendering.markdown(results),
            "results.tex": rendering.latex(results),
        }
        for name, text in texts.items():
            with atomic_path(out_dir / name) as tmp:
                tmp.write_text(text)
        plots = {
            "alpha_sensitivity": self.sweep_dir / "alpha_sensitivity.png",
            "task_vector_layers": out_dir / "task_vector_layers.png",
        }
        sensitivity_plot(self.trials, plots["alpha_sensitivity"], cfg.objective, self.best_trial)
        layer_norms_plot(outcome.merge, plots["task_vector_layers"])
        rows = [[s, *(means[s][m] for m in cfg.measures)] for s in cfg.systems]
        tracking.log_report(run, plots, {"results": (["system", *cfg.measures], rows)})
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
