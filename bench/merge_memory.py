"""Merge memory and speed on synthetic Llama-shaped checkpoints: peak RSS and time vs. model size.

Usage: .venv/bin/python bench/merge_memory.py [--sizes 0.5 1.5] [--workdir DIR] [--keep] [--small-shard-mb 256]
                                               [--threads 1]

For each size (billions of parameters) three fp32 ``LlamaForCausalLM`` checkpoints (base Θ0, domain ΘD,
IR ΘT: one random init plus two small perturbations, so τ ≠ 0) are written with ``save_pretrained``
(safetensors, 1 GB shards), one model in memory at a time. Each measured mode then runs in a fresh
subprocess, so its peak RSS (``VmHWM``) is its own:

- τ in memory: load ΘT (``from_pretrained``), τ = ``task_vector(...)``, ``TaskArithmetic(ΘT, ir, {domain: τ})``,
  ``set`` α = 0.5, then α = 0.8; then the throughput of ``apply_task_vectors`` at α = 0.5 against a
  plain ``p.copy_(q)`` over the same tensors (GB/s of parameter bytes, best of ``REPEATS``);
- τ streamed: load ΘT, ``save_tensors(task_vector_tensors(...), dir)`` (library default shard size),
  ``TaskArithmetic(ΘT, ir, {domain: CheckpointReader(dir)})``, ``set`` α = 0.5, then 0.8; and once more
  with ``shard_bytes = --small-shard-mb`` (0 skips that row), to show what the shard size costs.

The high-water mark is reset after loading (``echo 5 > /proc/self/clear_refs``, checked to work) and after
every merge step, so the load peak, each step's peak and the merge-phase peak (the largest step peak) are
reported separately, as multiples of one model's parameter bytes (GB = 1e9 bytes). The RSS of an empty
python + torch + transformers + taskvec_ir process is printed for context, and each peak is also given
above that baseline. Targets: merge peak ≤ 2.2× with τ in memory, ≤ 1.3× with τ streamed, checked for the
merge phase and for the whole process (load included).

Workers run torch with --threads intra-op threads (default 1; 0 = torch's default). On a shared 2-core
machine two OpenMP threads wait on each other: a loop of add_ over a model's tensors ran at about 1 GB/s
with 2 threads and 8 GB/s with 1 while another job was running, and one thread already saturates memory
bandwidth for add_ and copy_.

transformers 5 ``from_pretrained`` leaves fp32 safetensors weights as copy-on-write memory maps of the
file, so the load peak holds little of ΘT: its pages become resident (and anonymous once written) during
the first merge step, which is counted in the merge phase. The RSS right after loading and its
file-mapped part are printed.

Linux only (/proc). Checkpoints go under --workdir (default: a fresh folder in /tmp, removed at the end);
--keep leaves them, and a later run with the same --workdir reuses them. The 1.5B run needs about
3 × 6 GB of disk and stays near 2.2 × 6 GB of RSS at its peak.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GB = 1e9
MiB = 1 << 20
REPEATS = 3  # throughput is the best of this many: the machine may be shared, the minimum is least noisy
VOCAB = 32000
# (hidden, intermediate, heads) of Llama-like widths; a size takes the widest that still has >= MIN_LAYERS layers.
WIDTHS = [(4096, 11008, 32), (3072, 8192, 24), (2048, 5632, 16), (1280, 3584, 10), (1024, 2816, 8), (512, 1408, 4)]
MIN_LAYERS = 16
ROLES = ("base", "domain", "ir")
PERTURBATION = {"domain": 1, "ir": 2}  # noise seeds of ΘD and ΘT relative to Θ0
NOISE_SCALE = 1e-3
RESULT = "RESULT "
TARGET = {"memory": 2.2, "streamed": 1.3}


# ---------------------------------------------------------------- measurement helpers (inside workers)


def memory_status() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile of this process, in bytes."""
    text = Path("/proc/self/status").read_text()
    return {
        key: int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1)) * 1024
        for key in ("VmRSS", "VmHWM", "RssAnon", "RssFile")
    }


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: writing 5 to clear_refs), and check that it did."""
    Path("/proc/self/clear_refs").write_text("5")
    status = memory_status()
    if status["VmHWM"] > status["VmRSS"] + 64 * MiB:
        raise RuntimeError(f"clear_refs did not reset VmHWM: {status}")


class Phases:
    """Times and peak RSS of consecutive steps, the high-water mark reset before each."""

    def __init__(self):
        self.steps: dict[str, dict[str, float]] = {}

    def run(self, name: str, action):
        reset_peak()
        start = time.perf_counter()
        result = action()
        seconds = time.perf_counter() - start
        status = memory_status()
        self.steps[name] = {"seconds": seconds, "peak": status["VmHWM"], "rss_after": status["VmRSS"]}
        return result


def best_time(action) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


# ---------------------------------------------------------------- model shapes and checkpoints


def llama_shape(billions: float) -> dict:
    """A Llama config (dict) with about ``billions`` × 1e9 parameters, untied embeddings, MHA."""
    target = billions * 1e9
    for hidden, intermediate, heads in WIDTHS:
        per_layer = 4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden
        embeddings = 2 * VOCAB * hidden + hidden
        layers = round((target - embeddings) / per_layer)
        if layers >= MIN_LAYERS or hidden == WIDTHS[-1][0]:
            return {
                "vocab_size": VOCAB,
                "hidden_size": hidden,
                "intermediate_size": intermediate,
                "num_hidden_layers": max(layers, 1),
                "num_attention_heads": heads,
                "num_key_value_heads": heads,
                "max_position_embeddings": 2048,
                "tie_word_embeddings": False,
            }
    raise AssertionError


def noise(index: int, seed: int, like):
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).mul_(NOISE_SCALE)


def write_checkpoints(folder: Path, shape: dict) -> dict:
    """Θ0, ΘD = Θ0 + ε_D, ΘT = Θ0 + ε_T written with save_pretrained, holding one model at a time."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**shape, dtype="float32")
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model.to_empty(device="cpu")
    parameters = list(model.parameters())
    start = time.perf_counter()
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for parameter in parameters:
            if parameter.dim() == 1:  # RMSNorm weights
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
        init_seconds = time.perf_counter() - start
        written = 0.0
        current = None  # perturbation seed currently added to Θ0
        for role in ROLES:
            seed = PERTURBATION.get(role)
            for index, parameter in enumerate(parameters):
                if current is not None:
                    parameter.sub_(noise(index, current, parameter))
                if seed is not None:
                    parameter.add_(noise(index, seed, parameter))
            current = seed
            start = time.perf_counter()
            model.save_pretrained(folder / role, max_shard_size="1GB")
            written += time.perf_counter() - start
    return {
        "params": sum(p.numel() for p in parameters),
        "bytes": sum(p.numel() * p.element_size() for p in parameters),
        "init_seconds": init_seconds,
        "save_seconds": written,
        "peak": memory_status()["VmHWM"],
    }


# ---------------------------------------------------------------- workers (one per subprocess)


def worker_baseline(_args) -> dict:
    import torch  # noqa: F401
    from transformers import LlamaForCausalLM  # noqa: F401

    from taskvec_ir.models import merging  # noqa: F401

    return memory_status()


def worker_write(args) -> dict:
    folder = Path(args.folder)
    shape = llama_shape(args.size)
    marker = folder / "bench-config.json"
    if marker.is_file() and json.loads(marker.read_text()).get("shape") == shape:
        return {**json.loads(marker.read_text()), "reused": True}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    result = {"shape": shape, **write_checkpoints(folder, shape)}
    marker.write_text(json.dumps(result))
    return {**result, "reused": False}


def load_ir(folder: Path):
    import torch
    from transformers import LlamaForCausalLM

    reset_peak()
    start = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(folder / "ir", dtype=torch.float32)
    seconds = time.perf_counter() - start
    status = memory_status()
    return model, {
        "seconds": seconds,
        "peak": status["VmHWM"],
        "rss_after": status["VmRSS"],
        "rss_file_after": status["RssFile"],
        "rss_anon_after": status["RssAnon"],
    }


def worker_merge(args) -> dict:
    import torch

    from taskvec_ir.models import merging
    from taskvec_ir.models.checkpoints import CheckpointReader

    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    start_status = memory_status()
    model, load = load_ir(folder)
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    base, domain, ir = (CheckpointReader(folder / role) for role in ROLES)
    phases = Phases()
    result = {"mode": args.mode, "start_rss": start_status["VmRSS"], "model_bytes": model_bytes, "load": load}
    if args.mode == "memory":
        tau = phases.run("task_vector", lambda: merging.task_vector(model, base, domain))
        merge = phases.run("init", lambda: merging.TaskArithmetic(model, ir, {"domain": tau}))
    else:
        tau_folder = Path(args.tau_folder)
        shutil.rmtree(tau_folder, ignore_errors=True)
        tau_folder.mkdir(parents=True)
        shard_bytes = args.shard_mb * MiB if args.shard_mb else None
        kwargs = {"shard_bytes": shard_bytes} if shard_bytes else {}
        phases.run(
            "save_tau",
            lambda: merging.save_tensors(merging.task_vector_tensors(model, base, domain), tau_folder, **kwargs),
        )
        result["shard_bytes"] = shard_bytes
        result["tau_files"] = len(list(tau_folder.glob("*.safetensors")))
        merge = phases.run("init", lambda: merging.TaskArithmetic(model, ir, {"domain": CheckpointReader(tau_folder)}))
    phases.run("set_alpha_0.5", lambda: merge.set(merging.MergeSetting((("domain", 0.5),))))
    phases.run("set_alpha_0.8", lambda: merge.set(merging.MergeSetting((("domain", 0.8),))))
    result["steps"] = phases.steps
    # Correctness spot check: one merged tensor equals ΘT + 0.8·τ recomputed from the checkpoints.
    name, parameter = next((n, p) for n, p in model.named_parameters() if n.endswith("mlp.down_proj.weight"))
    key = merge._ir_keys[name]
    expected = ir[key] + 0.8 * (domain[key] - base[key])
    result["check_max_abs_error"] = float((parameter - expected).abs().max())
    if args.mode == "memory":  # throughput over the same tensors, after the peaks were recorded
        parameters = dict(model.named_parameters())
        tau_bytes = sum(t.numel() * t.element_size() for t in tau.values())

        def copy():
            for name, delta in tau.items():
                parameters[name].copy_(delta)

        result["throughput"] = {
            "bytes": tau_bytes,
            "apply_seconds": best_time(
                lambda: merging.apply_task_vectors(model, {"domain": tau}, merging.MergeSetting((("domain", 0.5),)))
            ),
            "copy_seconds": best_time(copy),
        }
    else:
        shutil.rmtree(args.tau_folder, ignore_errors=True)
    return result


WORKERS = {"baseline": worker_baseline, "write": worker_write, "merge": worker_merge}


def run_worker(*arguments: str) -> dict:
    """Run this script as a worker in a fresh interpreter; its last RESULT line is the answer."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", *arguments], capture_output=True, text=True, env=env
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT)]
    if completed.returncode != 0 or not lines:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise SystemExit(f"worker {' '.join(arguments)} failed (exit {completed.returncode})")
    return json.loads(lines[-1][len(RESULT) :])


# ---------------------------------------------------------------- report


def verdict(ratio: float, limit: float) -> str:
    return f"{'PASS' if ratio <= limit else 'FAIL'} (≤{limit}×)"


def report(size: float, written: dict, baseline: dict, runs: dict[str, dict]) -> None:
    model_bytes = written["bytes"]
    base_rss = baseline["VmRSS"]
    shape = written["shape"]

    def x(value: float) -> str:
        return f"{value / model_bytes:5.2f}×"

    def x_above(value: float) -> str:
        return f"{(value - base_rss) / model_bytes:5.2f}×"

    print(
        f"\n=== ~{size}B: LlamaForCausalLM fp32, {written['params'] / 1e9:.3f}B params = {model_bytes / GB:.2f} GB "
        f"(hidden {shape['hidden_size']}, intermediate {shape['intermediate_size']}, "
        f"layers {shape['num_hidden_layers']}, vocab {shape['vocab_size']}, untied) ==="
    )
    if written.get("reused"):
        print("checkpoints: reused from an earlier --keep run")
    else:
        print(
            f"checkpoints: 3 written in {written['save_seconds']:.0f} s "
            f"(init {written['init_seconds']:.0f} s; writer peak {x(written['peak'])})"
        )
    print(f"peak RSS as × model bytes (in brackets: above the {base_rss / GB:.2f} GB baseline process)")
    header = f"{'mode':<26}{'load peak':>18}{'merge peak':>18}{'whole process':>18}   step peaks (× model) and times"
    print(header)
    for label, run in runs.items():
        steps = run["steps"]
        merge_peak = max(step["peak"] for step in steps.values())
        whole = max(merge_peak, run["load"]["peak"])
        step_text = ", ".join(
            f"{name} {x(step['peak']).strip()} {step['seconds']:.1f}s" for name, step in steps.items()
        )
        print(
            f"{label:<26}{x(run['load']['peak'])} ({x_above(run['load']['peak'])})"
            f"{x(merge_peak)} ({x_above(merge_peak)})"
            f"{x(whole)} ({x_above(whole)})   load {run['load']['seconds']:.1f}s; {step_text}"
        )
    print(
        "after load: "
        + "; ".join(
            f"{label} RSS {x(run['load']['rss_after']).strip()} "
            f"(file-mapped {run['load']['rss_file_after'] / GB:.2f} GB, "
            f"anonymous {run['load']['rss_anon_after'] / GB:.2f} GB)"
            for label, run in runs.items()
        )
    )
    print("targets:")
    for label, run in runs.items():
        limit = TARGET[run["mode"]]
        merge_peak = max(step["peak"] for step in run["steps"].values())
        whole = max(merge_peak, run["load"]["peak"])
        print(
            f"  {label:<24} merge phase {verdict(merge_peak / model_bytes, limit)}, "
            f"above baseline {verdict((merge_peak - base_rss) / model_bytes, limit)}; "
            f"whole process {verdict(whole / model_bytes, limit)}, "
            f"above baseline {verdict((whole - base_rss) / model_bytes, limit)}"
        )
    memory = runs["τ in memory"]
    throughput = memory["throughput"]
    apply_rate = throughput["bytes"] / throughput["apply_seconds"] / GB
    copy_rate = throughput["bytes"] / throughput["copy_seconds"] / GB
    print(
        f"throughput over {throughput['bytes'] / GB:.2f} GB of parameters (best of {REPEATS}): "
        f"apply_task_vectors {apply_rate:.2f} GB/s ({throughput['apply_seconds']:.2f} s), "
        f"p.copy_(q) {copy_rate:.2f} GB/s ({throughput['copy_seconds']:.2f} s), ratio {apply_rate / copy_rate:.2f}"
    )
    print(
        "set_alpha steps: "
        + "; ".join(
            f"{label}: 0.5 {first:.1f} s, 0.8 {second:.1f} s ({second and run['model_bytes'] / second / GB:.2f} GB/s)"
            for label, run in runs.items()
            for first, second in [(run["steps"]["set_alpha_0.5"]["seconds"], run["steps"]["set_alpha_0.8"]["seconds"])]
        )
    )
    print(
        "check |merged − (ΘT + 0.8·τ)|max on one tensor: "
        + ", ".join(f"{label} {run['check_max_abs_error']:.1e}" for label, run in runs.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1.5], help="billions of parameters")
    parser.add_argument("--workdir", type=Path, help="where checkpoints go (default: a new folder in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoints (reused by a later run)")
    parser.add_argument(
        "--small-shard-mb",
        type=int,
        default=256,
        help="also run τ streamed with this save_tensors shard size (0: skip)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the workers (0: default)")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=sorted(TARGET), help=argparse.SUPPRESS)
    parser.add_argument("--tau-folder", help=argparse.SUPPRESS)
    parser.add_argument("--shard-mb", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(RESULT + json.dumps(WORKERS[args.worker](args)), flush=True)
        return

    started = time.perf_counter()
    created = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="merge_memory_", dir="/tmp")) if created else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"merge memory benchmark: sizes {args.sizes} B, workdir {workdir}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, torch threads in workers: {args.threads or 'default'}"
    )
    try:
        baseline = run_worker("baseline")
        print(
            f"baseline (empty python + torch + transformers + taskvec_ir): RSS {baseline['VmRSS'] / GB:.2f} GB, "
            f"peak {baseline['VmHWM'] / GB:.2f} GB"
        )
        for size in args.sizes:
            folder = workdir / f"llama-{size}b"
            written = run_worker("write", "--size", str(size), "--folder", str(folder))
            tau = str(folder / "tau")
            common = ("merge", "--folder", str(folder), "--threads", str(args.threads))
            runs = {
                "τ in memory": run_worker(*common, "--mode", "memory"),
                "τ streamed (default shard)": run_worker(*common, "--mode", "streamed", "--tau-folder", tau),
            }
            if args.small_shard_mb:
                runs[f"τ streamed ({args.small_shard_mb} MiB shard)"] = run_worker(
                    *common, "--mode", "streamed", "--tau-folder", tau, "--shard-mb", str(args.small_shard_mb)
                )
            report(size, written, baseline, runs)
            if not args.keep:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if created and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
