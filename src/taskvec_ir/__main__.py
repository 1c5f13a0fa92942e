"""``python -m taskvec_ir``: the ``taskvec-ir`` command (a table runs its cells this way, with its own Python)."""

from taskvec_ir.app import main

main()
