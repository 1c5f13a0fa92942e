"""Hydra loads sweepers only from the ``hydra_plugins`` namespace, and imports every module there at each
start: this one exposes ours and registers its configs, and imports Optuna only when a sweep begins."""

from hydra.plugins.sweeper import Sweeper

from taskvec_ir.config.composed import register

register()


class ResumableOptunaSweeper(Sweeper):
    """``hydra/sweeper=taskvec_optuna``; the sweep itself is ``taskvec_ir.runs.sweeping.OptunaSweep``."""

    def __init__(self, **settings):
        self.settings = settings
        self.sweep_impl = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from taskvec_ir.runs.sweeping import OptunaSweep

        self.sweep_impl = OptunaSweep(**self.settings)
        self.sweep_impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweep_impl.sweep(arguments)
