"""Optuna sweeps of α and λ on a tuning split, then one evaluation of the best setting on test: the sweeper
(``sweeper``), its study's storage, trials and recovery from lost sweepers, worker jobs, the final evaluation and
its report. How a sweep resumes, shares its study and recovers: docs/sweeps.md."""
