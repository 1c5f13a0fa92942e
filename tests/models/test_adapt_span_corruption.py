"""T5's span corruption: spans hidden behind sentinels in the input and restored in the target."""

import numpy as np
import pytest
import transformers

from taskvec_ir.models.adapt.span_corruption import corrupt_spans, random_spans_noise_mask, sentinel_ids

pytestmark = pytest.mark.usefixtures("one_thread")


def test_span_corruption_hides_spans_behind_sentinels_as_t5_does():
    rng = np.random.default_rng(0)
    ids = list(range(100, 140))
    mask = random_spans_noise_mask(len(ids), noise_density=0.15, mean_span_length=3.0, max_spans=99, rng=rng)
    assert mask.sum() == 6 and not mask[0]  # round(40 * 0.15) tokens; a kept run comes first
    spans = int(np.sum(mask[1:] & ~mask[:-1]))
    assert spans == 2  # round(6 / 3)
    inputs, targets = corrupt_spans(ids, mask, sentinels=[1, 2, 3])
    assert inputs.count(1) == inputs.count(2) == 1 and 3 not in inputs
    assert targets[0] == 1 and targets[-1] == 3 and len(targets) == 6 + 3
    # Putting the targets' spans back where the inputs' sentinels stand gives the original sequence.
    spans_by_sentinel, current = {}, None
    for token in targets:
        if token in (1, 2, 3):
            current = spans_by_sentinel.setdefault(token, [])
        else:
            current.append(token)
    restored = [token for item in inputs for token in spans_by_sentinel.get(item, [item])]
    assert restored == ids
    assert random_spans_noise_mask(1, 0.15, 3.0, 99, rng).tolist() == [True]


def test_sentinels_are_extra_id_tokens_or_the_top_of_the_vocabulary(starts):
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(starts["t5"]))
    ids, source = sentinel_ids(tokenizer)  # the tiny tokenizer has no <extra_id_N>
    assert ids == list(range(len(tokenizer) - 1, len(tokenizer) - 1 - len(ids), -1)) and len(ids) >= 2
    assert "no <extra_id_N>" in source and not set(ids) & set(tokenizer.all_special_ids)
    tokenizer.add_tokens([f"<extra_id_{i}>" for i in range(3)], special_tokens=True)
    ids, source = sentinel_ids(tokenizer)
    assert tokenizer.convert_ids_to_tokens(ids) == ["<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]
