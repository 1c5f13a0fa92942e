"""Choosing α and λ without a dev split: by cross-validation over the evaluated queries, or with no relevance label
at all (pseudo-queries, stability, NQC). ``methods.choose`` runs a job's ``selection=<method>``; what each method
computes and why: docs/selection.md.
"""
