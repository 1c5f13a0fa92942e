"""Fixtures of the selection tests."""

import pytest


@pytest.fixture
def cranfield_grid(cranfield_cfg):
    """A small grid on Cranfield with the tiny triple: three α values, 30 pseudo-queries."""
    small = ("selection.alphas=[0.0,0.5,1.0]", "selection.pseudo_queries.count=30")
    return lambda *overrides: cranfield_cfg(*small, *overrides)
