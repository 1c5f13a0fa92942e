"""Deriving a domain model ΘD where none is published: a start checkpoint's continued pre-training on a corpus's
documents, cached as an ordinary checkpoint folder (``cache_entry.adapted_checkpoint``). One module per family of
objectives behind a registry (``objectives``), one resumable loop (``training``); the methods: docs/adaptation.md.
"""
