"""Analyses a job runs after its evaluation, on its evaluated split, from the scores its pipeline caches
(``analyses: [alpha_response, depth, effect_split]``, ``analysis.*``; ``effect_split``: its own module).

- ``alpha_response``: where τ helps. Per query, the objective of task arithmetic at every α of the grid, each query
  at its λ (the job's; each fold's under cross-validation). From it: each query's **oracle α** (its best α; ties go
  to the smallest |α|, the smallest change to ΘT, then the smaller α) and the mean at the oracle α, an *upper
  bound* that no selection can reach, since it picks each query's α with that query's test labels; and the share
  of queries the job's chosen α helps, hurts or leaves unchanged against ΘT (α = 0) at the same λ, unchanged
  meaning |Δ| ≤ ``analysis.unchanged_within``, with the sign test of helped against hurt (unchanged queries left
  out); and the queries of largest gain and loss, with their text.
- ``depth``: the metric over re-ranking depth k × α × λ. Only BM25's top k are re-ranked and fused; the
  candidates below k follow them in BM25's order, as PyTerrier's ``(bm25 % k >> reranker) ^ bm25``: every depth
  then ranks the same top_k documents (recall@top_k and MAP compare like with like) and only the depth differs.
  The min-max normalisation of the fusion runs over the k re-ranked documents, BM25's and the model's alike.
  A model's score of a candidate does not depend on the other candidates, so the top-k scores are the top_k
  scores already cached: no forward pass. Cost: k pairs scored per query (a bi-encoder encodes at most k
  documents per query: fewer where queries share candidates), and seconds per query measured by scoring
  ``analysis.timing_queries`` queries' top k once more with the loaded model, on this machine's device.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.sources import IR
from taskvec_ir.config.systems import BM25, TASK_ARITHMETIC
from taskvec_ir.ir import evaluation, fusion
from taskvec_ir.pipeline.effect_split import DELTA_COLUMNS, effect_split, effect_split_lines, effect_split_summary
from taskvec_ir.pipeline.model_scores import system_weights
from taskvec_ir.pipeline.pipeline import Pipeline, Run
from taskvec_ir.pipeline.selection.choice import Fold, combine_folds
from taskvec_ir.reporting import plots, tracking
from taskvec_ir.reporting.rendering import csv_text
from taskvec_ir.reporting.significance import sign_test
from taskvec_ir.storage.outputs import atomic_path, write_json

log = logging.getLogger(__name__)
TIMING_REPEATS = 3
ORACLE_NOTE = (
    "an upper bound, not a result: each query's α is chosen with that query's own test labels, which no "
    "selection can read"
)

SIGN_NOTE = "two-sided sign test (binomial, p = 0.5) of the queries helped against those hurt; unchanged ones left out"


def settings_run(pipeline: Pipeline, split: str, folds: Sequence[Fold], alpha: float | None = None) -> Run:
    """Task arithmetic's fused run of ``split`` as the job ran it, each fold's queries at the fold's λ and, with
    ``alpha``, Θ' at ``alpha`` instead of the fold's α (as ``selection.choice.evaluate_choice`` builds it)."""
    merge = pipeline.spec.merge
    runs = [
        pipeline.system_run(split, TASK_ARITHMETIC, fold.lam, merge.at(fold.alpha if alpha is None else alpha))
        for fold in folds
    ]
    return combine_folds(folds, runs)


def oracle_alpha(values: Mapping[float, float]) -> float:
    """The α of highest value; ties go to the smallest |α| (the smallest change to ΘT), then the smaller α."""
    return max(values, key=lambda alpha: (values[alpha], -abs(alpha), -alpha))


def alpha_response(
    pipeline: Pipeline,
    split: str,
    folds: Sequence[Fold],
    alphas: Sequence[float],
    measure: str,
    top_queries: int,
    unchanged_within: float,
) -> dict:
    """The per-query α response of ``split`` (see the module docstring) as JSON values."""
    grid = sorted({0.0, *alphas, *(fold.alpha for fold in folds)})  # ΘT and the chosen α are always points of it
    qrels, texts = pipeline.split(split).qrels, pipeline.split(split).queries
    means, values = {}, {}
    for alpha in grid:
        found = evaluation.evaluate_run(qrels, settings_run(pipeline, split, folds, alpha), [measure])
        means[alpha], values[alpha] = found[0][measure], found[1][measure]
    chosen_mean, chosen = (
        v[measure] for v in evaluation.evaluate_run(qrels, settings_run(pipeline, split, folds), [measure])
    )
    queries = sorted(chosen)
    per_query = {}
    for q in queries:
        best = oracle_alpha({alpha: values[alpha][q] for alpha in grid})
        per_query[q] = {
            "ir_model": values[0.0][q],
            "chosen": chosen[q],
            "delta": chosen[q] - values[0.0][q],
            "oracle_alpha": best,
            "oracle": values[best][q],
            "values": [values[alpha][q] for alpha in grid],
        }
    counts = {
        "helped": sum(r["delta"] > unchanged_within for r in per_query.values()),
        "hurt": sum(r["delta"] < -unchanged_within for r in per_query.values()),
    }
    counts["unchanged"] = len(queries) - counts["helped"] - counts["hurt"]
    ranked = sorted(queries, key=lambda q: (per_query[q]["delta"], q))

    def listed(ids: Sequence[str]) -> list[dict]:
        return [
            {"query_id": q, "query": texts.get(q), **{k: v for k, v in per_query[q].items() if k != "values"}}
            for q in ids
        ]

    oracle_counts = {alpha: sum(r["oracle_alpha"] == alpha for r in per_query.values()) for alpha in grid}
    return {
        "split": split,
        "measure": measure,
        "queries": len(queries),
        "settings": [
            {"queries": None if f.queries is None else len(f.queries), "alpha": f.alpha, "lam": f.lam} for f in folds
        ],  # fmt: skip
        "alphas": grid,
        "curve": [{"alpha": a, "mean": means[a], "oracle_queries": oracle_counts[a]} for a in grid],
        "ir_model": means[0.0],
        "chosen": chosen_mean,
        "oracle": statistics.fmean(r["oracle"] for r in per_query.values()),
        "oracle_note": ORACLE_NOTE,
        "counts": counts,
        "shares": {kind: n / len(queries) for kind, n in counts.items()},
        "sign_p": sign_test(counts["helped"], counts["hurt"]),
        "sign_note": SIGN_NOTE,
        "unchanged_within": unchanged_within,
        "top_helped": listed([q for q in reversed(ranked) if per_query[q]["delta"] > unchanged_within][:top_queries]),
        "top_hurt": listed([q for q in ranked if per_query[q]["delta"] < -unchanged_within][:top_queries]),
        "per_query": per_query,
    }


# -- depth ---------------------------------------------------------------------------------------------------------
def rerank_top(candidates: Run, scores: Run, lam: float, depth: int) -> Run:
    """Each query's top ``depth`` candidates (BM25's ranking, ties as trec_eval breaks them) fused with the model's
    scores, min-max over those ``depth`` documents; the candidates below follow in BM25's order, with scores below
    every fused one (fused scores lie in [0, 1]): PyTerrier's ``(bm25 % depth >> reranker) ^ bm25``."""
    ranked = {q: sorted(docs, key=lambda d: (docs[d], d), reverse=True) for q, docs in candidates.items()}
    top = {q: {d: candidates[q][d] for d in ids[:depth]} for q, ids in ranked.items()}
    fused = fusion.fuse(top, {q: {d: scores[q][d] for d in docs} for q, docs in top.items()}, lam)
    for q, ids in ranked.items():
        fused.setdefault(q, {}).update({d: -1.0 - i for i, d in enumerate(ids[depth:])})
    return {q: docs for q, docs in fused.items() if docs}


def depth_surface(
    pipeline: Pipeline,
    split: str,
    folds: Sequence[Fold],
    depths: Sequence[int],
    alphas: Sequence[float],
    lambdas: Sequence[float],
    measures: Sequence[str],
) -> dict:
    """The measures at every depth × α × λ (rows), the job's own settings at every depth (``job``: each fold's α
    and λ, so its row at top_k is the job's task arithmetic exactly), and BM25's values (the same at every depth)."""
    qrels, candidates = pipeline.split(split).qrels, pipeline.candidates(split)
    grid = sorted({0.0, *alphas, *(fold.alpha for fold in folds)})
    lambdas = sorted({*lambdas, *(fold.lam for fold in folds)})
    scores = {a: pipeline.scores(split, system_weights(TASK_ARITHMETIC, pipeline.spec.merge.at(a))) for a in grid}
    rows = []
    for depth in depths:
        for alpha in grid:
            for lam in lambdas:
                means = evaluation.evaluate_run(qrels, rerank_top(candidates, scores[alpha], lam, depth), measures)[0]
                rows.append({"depth": depth, "alpha": alpha, "lam": lam, **means})
    job = []
    for depth in depths:
        run = combine_folds(folds, [rerank_top(candidates, scores[fold.alpha], fold.lam, depth) for fold in folds])
        job.append({"depth": depth, **evaluation.evaluate_run(qrels, run, measures)[0]})
    bm25 = evaluation.evaluate_run(qrels, candidates, measures)[0]
    return {
        "split": split,
        "depths": list(depths),
        "alphas": grid,
        "lams": lambdas,
        "rows": rows,
        "job": job,
        BM25: bm25,
    }


def time_depths(pipeline: Pipeline, split: str, depths: Sequence[int], sample: int) -> dict:
    """Seconds per query of scoring each depth's top k with the loaded ΘT (as merged last: the weights do not change
    the cost), over the first ``sample`` queries by id that have candidates, after one warm-up pair, the best of
    ``TIMING_REPEATS`` runs (the least disturbed by other processes, as ``timeit`` advises); and the device it ran
    on. A forward pass outside the cache: it times, and stores nothing."""
    import torch

    candidates, queries, texts = pipeline.candidates(split), pipeline.split(split).queries, pipeline.texts(split)
    ids = sorted(q for q, docs in candidates.items() if docs and q in queries)[:sample]
    ranked = {q: sorted(candidates[q], key=lambda d: (candidates[q][d], d), reverse=True) for q in ids}
    scorer = pipeline.triple.scorer(IR)
    scorer.score(queries, texts, {ids[0]: {ranked[ids[0]][0]: 0.0}})  # warm-up: lazy initialisation is not the cost
    seconds = {}
    for depth in depths:
        top = {q: {d: candidates[q][d] for d in ranked[q][:depth]} for q in ids}
        runs = []
        for _ in range(TIMING_REPEATS):
            start = time.perf_counter()
            scorer.score(queries, texts, top)
            runs.append(time.perf_counter() - start)
        seconds[depth] = min(runs) / len(ids)
    device = next(scorer.module.parameters()).device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    return {"seconds_per_query": seconds, "queries": len(ids), "device": name, "kind": pipeline.spec.model.kind}


def gain_kept(surface: dict, measure: str, timing: dict | None) -> list[dict]:
    """Per depth, the job's value of ``measure``, the share of its gain over BM25 at top_k that the depth keeps
    (None where there is no gain at top_k: TA at or below BM25, where a share of a loss would read as its opposite),
    pairs scored per query and measured seconds per query."""
    full = surface["job"][-1][measure] - surface[BM25][measure]
    top_k = surface["depths"][-1]
    found = []
    for row in surface["job"]:
        gain = row[measure] - surface[BM25][measure]
        seconds = timing["seconds_per_query"].get(row["depth"]) if timing else None
        found.append(
            {
                "depth": row["depth"],
                measure: row[measure],
                "gain_kept": gain / full if full > 1e-12 else None,
                "pairs_per_query": row["depth"],
                "cost_share": row["depth"] / top_k,
                "seconds_per_query": seconds,
            }
        )
    return found


def depth_summary(kept: list[dict], measure: str) -> list[str]:
    """One line per depth below top_k: ``depth 20 keeps 98% of the gain over BM25 at 20% of the cost``, or ``no gain
    over BM25 at top_k`` where TA is not above BM25 there."""
    lines = []
    for row in kept[:-1]:
        share = "no gain over BM25 at top_k" if row["gain_kept"] is None else (
            f"keeps {100 * row['gain_kept']:.0f}% of the gain over BM25"
        )  # fmt: skip
        seconds = "" if row["seconds_per_query"] is None else f", {row['seconds_per_query']:.3g} s/query measured"
        lines.append(
            f"depth {row['depth']}: {measure} {row[measure]:.4f}, {share} at {100 * row['cost_share']:.0f}% of the "
            f"pairs scored{seconds}"
        )
    return lines


# -- plots ---------------------------------------------------------------------------------------------------------
def alpha_response_plot(response: dict, path: Path, title: str):
    """Left: the mean at each α, the oracle's mean (an upper bound) and the chosen settings' mean; right: the
    per-query Δ of the chosen α against ΘT; ``title``: what was measured (``plots.heading``)."""
    measure = response["measure"]
    fig, (curve, spread) = plots.subplots(1, 2, figsize=(11, 4.4))
    curve.plot([r["alpha"] for r in response["curve"]], [r["mean"] for r in response["curve"]], marker="o",
               label="mean at α (every query)")  # fmt: skip
    curve.axhline(response["oracle"], color="tab:green", linestyle="--", label="oracle α per query (upper bound)")
    curve.axhline(response["chosen"], color="tab:red", linestyle=":", label="the job's chosen α")
    curve.set_xlabel("α")
    curve.set_ylabel(f"{measure} ({response['split']})")
    curve.legend(loc="best")
    deltas = [r["delta"] for r in response["per_query"].values()]
    spread.hist(deltas, bins=31, color="tab:blue")
    shares = response["shares"]
    spread.set_title(
        f"helped {100 * shares['helped']:.0f}%, hurt {100 * shares['hurt']:.0f}%, "
        f"unchanged {100 * shares['unchanged']:.0f}% (sign test p = {response['sign_p']:.2g})",
        fontsize="medium",
    )
    spread.set_xlabel(f"Δ {measure} per query, chosen α − ΘT")
    spread.set_ylabel("queries")
    fig.suptitle(title)
    plots.save_figure(fig, path)
    return fig


def depth_plot(surface: dict, measure: str, lam: float, timing: dict | None, path: Path, title: str):
    """``measure`` against re-ranking depth: one line per α at λ = ``lam``, the job's settings bold, BM25 dashed;
    the measured seconds per query under each depth when timed; ``title``: what was measured (``plots.heading``)."""
    fig, ax = plots.subplots(figsize=(7, 4.8))
    for alpha in surface["alphas"]:
        points = [(r["depth"], r[measure]) for r in surface["rows"] if r["alpha"] == alpha and r["lam"] == lam]
        ax.plot(*zip(*points, strict=True), marker=".", alpha=0.6, label=f"α = {alpha:g}, λ = {lam:g}")
    job = surface["job"]
    ax.plot([r["depth"] for r in job], [r[measure] for r in job], "ko-", linewidth=2.5, label="the job's setting")
    ax.axhline(surface[BM25][measure], label="BM25", **plots.REFERENCE_STYLES["BM25"])
    ax.set_xscale("log")
    seconds = timing["seconds_per_query"] if timing else {}
    ax.set_xticks(
        surface["depths"], [f"{k}\n{seconds[k]:.2g} s/q" if k in seconds else str(k) for k in surface["depths"]]
    )
    ax.minorticks_off()
    ax.set_xlabel(
        "re-ranking depth k (pairs scored per query)" + (f"; seconds per query, {timing['device']}" if timing else "")
    )
    ax.set_ylabel(f"{measure} ({surface['split']})")
    ax.set_title(title)
    ax.legend(loc="best", fontsize="x-small", ncol=2)
    plots.save_figure(fig, path)
    return fig


# -- in a job --------------------------------------------------------------------------------------------------
@dataclass
class Analysed:
    """What the analyses add to a job: W&B summary values, ``metrics.json``'s ``analyses`` (what a table compiles)
    and the lines printed under the job's table."""

    summary: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)


def run_analyses(cfg: Config, pipeline: Pipeline, folds: Sequence[Fold], out_dir: Path, run) -> Analysed:
    """``cfg.analyses`` on the job's split at the settings it ran (``folds``): files into ``out_dir``, W&B entries
    into ``run``. A sweep's trials run none (they tune on dev; the final evaluation runs them on test)."""
    done = Analysed()
    if not cfg.analyses:
        return done
    if cfg.sweep is not None and not cfg.sweep.final:
        log.info("analyses %s: run by the sweep's final evaluation, not by its trials", cfg.analyses)
        return done
    alphas, objective = cfg.analysis.grid(cfg.selection), cfg.objective
    judged = sum(1 for docs in pipeline.split(cfg.split).qrels.values() if docs)
    title = plots.heading(cfg.dataset.name, cfg.model.name, cfg.split, judged)
    if "alpha_response" in cfg.analyses:
        settings = cfg.analysis
        response = alpha_response(
            pipeline, cfg.split, folds, alphas, objective, settings.top_queries, settings.unchanged_within
        )
        write_json(response, out_dir / "alpha_response.json")
        alpha_response_plot(response, out_dir / "alpha_response.png", title)
        headline = {key: response[key] for key in ("ir_model", "chosen", "oracle")}
        done.metrics["alpha_response"] = {
            "measure": objective,
            **headline,
            **response["shares"],
            "sign_p": response["sign_p"],
        }
        done.summary.update({f"alpha_response/{key}": value for key, value in done.metrics["alpha_response"].items()})
        columns = ["kind", "query_id", "query", "delta", "ir_model", "chosen", "oracle_alpha", "oracle"]
        top = [[kind, *(row[c] for c in columns[1:])] for kind in ("helped", "hurt") for row in response[f"top_{kind}"]]
        curve = [[r["alpha"], r["mean"], r["oracle_queries"]] for r in response["curve"]]
        tracking.log_report(
            run,
            {"alpha_response/plot": out_dir / "alpha_response.png"},
            {
                "alpha_response/top_queries": (columns, top),
                "alpha_response/curve": (["alpha", objective, "oracle_queries"], curve),
            },
        )
        shares = response["shares"]
        done.lines.append(
            f"α response ({objective}, {response['queries']} {cfg.split} queries): ΘT {response['ir_model']:.4f}, "
            f"chosen α {response['chosen']:.4f}, oracle α per query {response['oracle']:.4f} (an upper bound: "
            f"it reads the test labels); helped {100 * shares['helped']:.0f}%, hurt {100 * shares['hurt']:.0f}%, "
            f"unchanged {100 * shares['unchanged']:.0f}% (|Δ| ≤ {cfg.analysis.unchanged_within:g}); sign test of "
            f"helped against hurt (unchanged left out): {response['counts']['helped']} vs "
            f"{response['counts']['hurt']}, p = {response['sign_p']:.2g}"
        )
    if "depth" in cfg.analyses:
        depths = cfg.analysis.depth_values(cfg.retriever.top_k)
        lambdas = cfg.analysis.lams if cfg.analysis.lams is not None else cfg.lam.grid or []
        surface = depth_surface(pipeline, cfg.split, folds, depths, alphas, lambdas, cfg.measures)
        timing = (
            time_depths(pipeline, cfg.split, depths, cfg.analysis.timing_queries)
            if cfg.analysis.timing_queries
            else None
        )
        surface["timing"] = timing
        surface["kept"] = kept = gain_kept(surface, objective, timing)
        write_json(surface, out_dir / "depth_surface.json")
        columns = ["depth", "alpha", "lam", *cfg.measures]
        with atomic_path(out_dir / "depth_surface.csv") as tmp:
            tmp.write_text(csv_text([{c: row[c] for c in columns} for row in surface["rows"]]))
        depth_plot(surface, objective, folds[0].lam, timing, out_dir / "depth_surface.png", title)
        done.metrics["depth"] = {"measure": objective, "bm25": surface[BM25][objective], "depths": kept}
        if timing:
            done.metrics["depth"]["device"] = timing["device"]
        for row in kept:
            done.summary.update(
                {
                    f"depth/{row['depth']}/{key}": value
                    for key, value in row.items()
                    if key != "depth" and value is not None
                }
            )
        kept_columns = list(kept[0])
        tracking.log_report(
            run,
            {"depth/plot": out_dir / "depth_surface.png"},
            {
                "depth/surface": (columns, [[row[c] for c in columns] for row in surface["rows"]]),
                "depth/job": (kept_columns, [[row[c] for c in kept_columns] for row in kept]),
            },
        )
        done.lines += depth_summary(kept, objective)
    if "effect_split" in cfg.analyses:
        measures = [objective, *(m for m in cfg.measures if m != objective)]  # the first is the one shared out
        found = effect_split(pipeline, cfg.split, alphas, cfg.analysis.fused_lambdas(cfg.lam), measures)
        write_json(found, out_dir / "effect_split.json")
        done.metrics["effect_split"] = {key: found[key] for key in ("measure", "top_k", "deltas")}
        done.summary.update(effect_split_summary(found))
        rows = [[row[c] for c in DELTA_COLUMNS] for row in found["deltas"]]
        tracking.log_report(run, {}, {"effect_split": (list(DELTA_COLUMNS), rows)})
        done.lines += effect_split_lines(found)
    return done
