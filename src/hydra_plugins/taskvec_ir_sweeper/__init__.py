"""Our Optuna sweeper as a Hydra plugin: Hydra loads sweepers only from the ``hydra_plugins`` namespace and imports
every module there at each start, so this shim imports Optuna only when a sweep begins; its configs are in
``config``."""

from hydra.plugins.sweeper import Sweeper


class ResumableOptunaSweeper(Sweeper):
    """``hydra/sweeper=taskvec_optuna``; the sweep itself is ``taskvec_ir.runs.sweeping.sweeper.OptunaSweep``."""

    def __init__(self, **settings):
        self.settings = settings
        self.sweep_impl = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from taskvec_ir.runs.sweeping.sweeper import OptunaSweep

        self.sweep_impl = OptunaSweep(**self.settings)
        self.sweep_impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweep_impl.sweep(arguments)
