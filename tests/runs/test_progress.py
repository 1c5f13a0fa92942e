"""Progress in words: durations, the time left at the pace so far, and a sweep's trial lines read back from its log
as a table reads them."""

import time

from taskvec_ir.runs.progress import Pace, SweepProgress, duration, sweep_progress, trial_line


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (0.4, 42, 60, 185, 3599, 3600, 7620)] == [
        "0 s", "42 s", "1 min 00 s", "3 min 05 s", "59 min 59 s", "1 h 00 min", "2 h 07 min"]  # fmt: skip


def test_the_time_left_is_the_pace_of_the_units_finished_here():
    pace = Pace(started=time.monotonic() - 120, finished=2)  # 2 units in 2 minutes: 1 minute each
    assert pace.line(5, 8, "trials") == "5/8 trials · 2 min 00 s elapsed, about 3 min 00 s left"  # 3 done before
    assert pace.line(8, 8, "trials") == "8/8 trials · 2 min 00 s elapsed"  # nothing left
    assert Pace(started=time.monotonic() - 30).line(3, 8, "trials") == "3/8 trials · 30 s elapsed"  # no pace yet


def test_a_sweeps_log_tells_its_trials_complete_and_those_finished_in_this_run():
    pace = Pace(finished=1)
    log = "\n".join(
        [
            "[…][taskvec_ir][INFO] - Study s: 3 of 6 trials complete; searching alpha.value",
            "[…][taskvec_ir][INFO] - " + trial_line(3, "ndcg@10 0.4127 at alpha.value=0.25", pace, 4, 6),
            "[…][taskvec_ir][INFO] - " + trial_line(4, "failed", pace, 4, 6),
            "[…][taskvec_ir][INFO] - " + trial_line(5, "ndcg@10 0.4 at alpha.value=1 · λ=0.3", pace, 5, 6),
        ]
    )
    assert sweep_progress(log) == SweepProgress(done=5, total=6, finished=2)
    assert sweep_progress("Study s: 0 of 6 trials complete") is None
