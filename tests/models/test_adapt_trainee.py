"""How a step's batch is drawn: a function of (seed, step) alone; epochs cover the examples, and a distinct batch
never holds one twice."""

from taskvec_ir.models.adapt.trainee import batch_indices, distinct_batch_indices


def test_batches_are_seeded_and_each_epoch_covers_the_documents():
    epoch = [i for step in range(5) for i in batch_indices(step, 10, 2, seed=0)]
    assert sorted(epoch) == list(range(10)) and epoch != list(range(10))
    assert batch_indices(7, 10, 3, seed=0) == batch_indices(7, 10, 3, seed=0) != batch_indices(7, 10, 3, seed=1)


def test_a_distinct_batch_holds_each_example_once_and_epochs_cover_them():
    for step in range(40):
        batch = distinct_batch_indices(step, 10, 3, seed=0)
        assert len(batch) == len(set(batch)) == 3  # 10 % 3 = 1 left out per epoch: no batch spans two epochs
    epoch = [i for step in range(3) for i in distinct_batch_indices(step, 10, 3, seed=0)]
    assert len(set(epoch)) == 9 and distinct_batch_indices(3, 10, 3, 0) != distinct_batch_indices(3, 10, 3, 1)
