"""Hydra loads sweepers only from the ``hydra_plugins`` namespace: this exposes ours there."""

from taskvec_ir.sweeping import ResumableOptunaSweeper as _Sweeper


class ResumableOptunaSweeper(_Sweeper):
    """See ``taskvec_ir.sweeping``."""
