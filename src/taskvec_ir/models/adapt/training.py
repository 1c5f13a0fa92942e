"""The training loop every objective shares: AdamW with linear warmup and decay, resumable from a saved state so
that a resumed run continues bit for bit as an uninterrupted one would (docs/adaptation.md, "Exact resume")."""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from taskvec_ir.config.model import AdaptConfig
from taskvec_ir.models.adapt.trainee import Trainee
from taskvec_ir.storage.outputs import atomic_path

log = logging.getLogger(__name__)

WARMUP_FRACTION = 0.1
MAX_GRAD_NORM = 1.0  # the transformers Trainer's default clipping
FINAL_LOSS_STEPS = 10
_STATE_FILE = "state.pt"  # in the folder a run saves its progress to


@dataclass
class TrainingRun:
    """How far a run got: its steps, each step's loss, and its training time over every session."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int | None = None

    @property
    def final_loss(self) -> float:
        """The mean loss of the last FINAL_LOSS_STEPS steps."""
        return float(np.mean(self.losses[-FINAL_LOSS_STEPS:]))


def train(
    trainee: Trainee,
    examples: list,
    settings: AdaptConfig,
    partial: Path | None,
    log_step: Callable[[int, float], None] | None,
) -> TrainingRun:
    """Train for ``settings.steps`` steps, resuming from and saving to ``partial`` when it is given."""
    from transformers import get_linear_schedule_with_warmup

    parameters = [p for p in trainee.module.parameters() if p.requires_grad]
    # No weight decay (the transformers and sentence-transformers trainers' default): a decay would shrink
    # every weight, and τ = ΘD − Θ0 would carry that shrinkage as if it were domain knowledge.
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(WARMUP_FRACTION * settings.steps), settings.steps)
    run = TrainingRun()
    if partial is not None:
        state = _load_state(partial / _STATE_FILE)
        if state is not None:
            trainee.module.load_state_dict(state["weights"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            run = TrainingRun(
                step=state["step"], losses=list(state["losses"]), seconds=state["seconds"], resumed_from=state["step"]
            )
            log.info("adapt: resuming at step %d of %d from %s", run.step, settings.steps, partial)
    if len(examples) < settings.batch_size:
        log.warning(
            "adapt: %d documents for batches of %d: a batch repeats documents", len(examples), settings.batch_size
        )
    log.info(
        "adapt: %s on %d documents, steps %d to %d", settings.objective, len(examples), run.step + 1, settings.steps
    )
    trainee.module.train()
    started = time.perf_counter()
    with tqdm(total=settings.steps, initial=run.step, desc=f"adapting ({settings.objective})", unit="step") as bar:
        while run.step < settings.steps:
            # Every random draw of a step (masking, noise, dropout) comes from (seed, step), so a resumed run
            # needs no iterator or RNG state to continue as an uninterrupted one would.
            step_seed = _step_seed(settings.seed, run.step)
            torch.manual_seed(step_seed)
            batch = trainee.batch(examples, run.step, settings)
            loss = trainee.loss(batch, np.random.default_rng(step_seed))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"adapt: the loss is {loss.item()} at step {run.step + 1} (training "
                    "diverged, or a batch had nothing to predict): lower "
                    "adapt.learning_rate or check the documents"
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            run.step += 1
            run.losses.append(loss.item())
            bar.set_postfix(loss=f"{run.losses[-1]:.4f}")
            bar.update()
            if partial is not None and run.step % settings.save_every == 0 and run.step < settings.steps:
                elapsed = run.seconds + time.perf_counter() - started
                _save_state(partial / _STATE_FILE, trainee.module, optimizer, scheduler, run, elapsed)
                log.info("adapt: step %d of %d, loss %.4f (state saved)", run.step, settings.steps, run.losses[-1])
            if log_step is not None:
                log_step(run.step, run.losses[-1])
    run.seconds += time.perf_counter() - started
    log.info("adapt: %d steps done, final loss %.4f", run.step, run.final_loss)
    return run


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def _save_state(path: Path, module: torch.nn.Module, optimizer, scheduler, run: TrainingRun, seconds: float) -> None:
    """Everything a resumed run needs (no RNG state: every step reseeds from (seed, step)), written atomically."""
    with atomic_path(path) as tmp:
        torch.save(
            {
                "weights": module.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": run.step,
                "losses": run.losses,
                "seconds": seconds,
            },
            tmp,
        )


def _load_state(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:  # truncated or damaged
        log.warning("adapt: the saved state %s cannot be read (%s): starting over", path, error)
        os.remove(path)
        return None
