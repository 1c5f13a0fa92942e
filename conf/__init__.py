"""The Hydra configs of ``taskvec-ir``, one folder per config group: a package, so that an installed command
finds them (``importlib.resources``)."""
