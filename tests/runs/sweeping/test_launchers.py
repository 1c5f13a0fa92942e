"""What the sweeper takes from the launchers' errors: a lost job is a failed trial, anything else a bug."""

from taskvec_ir.runs.sweeping.launchers import job_lost_errors


def test_only_a_launchers_lost_job_counts_as_lost():
    from joblib.externals.loky.process_executor import TerminatedWorkerError
    from submitit.core.utils import FailedJobError

    lost = job_lost_errors()
    assert issubclass(FailedJobError, lost) and issubclass(TerminatedWorkerError, lost)
    assert not issubclass(ValueError, lost) and not issubclass(KeyError, lost)  # a bug keeps its traceback
