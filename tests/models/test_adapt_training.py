"""The training loop: a build interrupted after a saved state resumes there and ends bit for bit as an uninterrupted
one, for every objective; a damaged state is set aside and training starts over."""

import json
import logging

import pytest
import torch

from taskvec_ir.models.adapt.cache_entry import PARTIAL_KIND, adapted_checkpoint
from taskvec_ir.models.checkpoints import CheckpointReader
from taskvec_ir.storage.cache import Cache

from adapt_cases import CORPORA, CORPUS, DOCS, FAST, RUNS, spec

pytestmark = pytest.mark.usefixtures("one_thread")


class Interrupted(Exception):
    pass


def stop_at_step_four(step, loss):  # after the state of step 4 is saved (save_every 2)
    if step == 4:
        raise Interrupted


@pytest.mark.parametrize("objective", list(RUNS))
def test_an_interrupted_build_resumes_and_ends_as_an_uninterrupted_one(objective, starts, tmp_path, caplog):
    start, choice = RUNS[objective]
    five_steps = spec(start=str(starts[start]), objective=choice, **{**FAST, "steps": 5, "save_every": 2})
    cache = Cache(tmp_path / "interrupted")

    with pytest.raises(Interrupted):
        adapted_checkpoint(five_steps, cache, lambda: CORPORA[objective], CORPUS, log_step=stop_at_step_four)
    assert len(list((tmp_path / "interrupted" / PARTIAL_KIND).iterdir())) == 1
    logged = []
    with caplog.at_level(logging.INFO, logger="taskvec_ir.models.adapt.training"):
        resumed = adapted_checkpoint(
            five_steps, cache, lambda: CORPORA[objective], CORPUS, log_step=lambda s, _: logged.append(s)
        )
    assert "resuming at step 4 of 5" in caplog.text
    assert logged == [5]
    assert not any((tmp_path / "interrupted" / PARTIAL_KIND).iterdir())  # removed once complete
    provenance = json.loads((resumed / "provenance.json").read_text())
    assert provenance["steps"] == 5 and provenance["resumed_from_step"] == 4

    whole = adapted_checkpoint(five_steps, Cache(tmp_path / "whole"), lambda: CORPORA[objective], CORPUS)
    assert json.loads((whole / "provenance.json").read_text())["losses"] == provenance["losses"]
    resumed_weights, whole_weights = CheckpointReader(resumed), CheckpointReader(whole)
    assert all(torch.equal(resumed_weights[name], whole_weights[name]) for name in whole_weights)


def test_a_damaged_state_is_set_aside_and_training_starts_over(starts, tmp_path, caplog):
    four_steps = spec(start=str(starts["bert_mlm"]), **{**FAST, "steps": 4, "save_every": 2})
    cache = Cache(tmp_path / "cache")

    def stop_at_step_three(step, loss):  # after the state of step 2 is saved
        if step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        adapted_checkpoint(four_steps, cache, lambda: DOCS, CORPUS, log_step=stop_at_step_three)
    (state,) = (tmp_path / "cache" / PARTIAL_KIND).glob("*/*")
    state.write_bytes(state.read_bytes()[:100])  # truncated, as by a full disk
    with caplog.at_level(logging.WARNING, logger="taskvec_ir.models.adapt.training"):
        out = adapted_checkpoint(four_steps, cache, lambda: DOCS, CORPUS)
    assert "cannot be read" in caplog.text and "starting over" in caplog.text
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["steps"] == 4 and provenance["resumed_from_step"] is None
    whole = adapted_checkpoint(four_steps, Cache(tmp_path / "whole"), lambda: DOCS, CORPUS)
    assert json.loads((whole / "provenance.json").read_text())["losses"] == provenance["losses"]
