"""Fixtures shared by the reliability suite. Helpers to run the command are in ``procs.py``; the process-level
scenarios in ``scenarios.py``, started in the background when the session begins (only those the selected
tests use) and awaited by the fixtures below."""

from pathlib import Path

import pytest

import scenarios
from tiny_models import tiny_bert, tiny_triple


def _uses_scenario(item) -> bool:
    return bool(set(getattr(item, "fixturenames", ())) & set(scenarios.SCENARIOS))


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(session, config, items):
    """A test that reads a scenario runs the command end to end: it is slow (pyproject.toml's markers). Once -m
    and -k have deselected: note the scenarios the selected tests use, and run those tests last (each group in its
    order), so that the function-level tests run while the scenarios' processes do."""
    for item in filter(_uses_scenario, items):
        item.add_marker(pytest.mark.slow)
    result = yield
    config.stash[_NEEDED] = {
        name for item in items for name in getattr(item, "fixturenames", ()) if name in scenarios.SCENARIOS
    }
    items[:] = [item for item in items if not _uses_scenario(item)] + list(filter(_uses_scenario, items))
    return result


_NEEDED = pytest.StashKey[set]()


@pytest.fixture(scope="session")
def triple(tmp_path_factory) -> dict[str, Path]:
    """A tiny bi-encoder triple (base, domain, ir) of real checkpoint folders."""
    return tiny_triple(tmp_path_factory.mktemp("triple"), "bi_encoder")


@pytest.fixture(scope="session", autouse=True)
def _background(request, tmp_path_factory):
    needed = request.config.stash.get(_NEEDED, set())
    if not needed:
        yield None
        return
    try:
        mirror_dir = request.getfixturevalue("mirror_dir")
    except pytest.skip.Exception:  # no data mirror: the scenario tests skip through their own mirror_dir
        yield None
        return
    triple = request.getfixturevalue("triple")
    context = {
        "triple": triple,
        "mirror_dir": mirror_dir,
        "vocab_1000": tiny_bert(tmp_path_factory.mktemp("vocab") / "domain", 5, "mlm", vocab_size=1000),
    }
    background = scenarios.Background(needed, context, tmp_path_factory.mktemp)
    yield background
    background.close()


def _scenario(request, name: str):
    request.getfixturevalue("mirror_dir")  # skips without the data mirror
    return request.getfixturevalue("_background").result(name)


@pytest.fixture(scope="session")
def overnight(request):
    """scenarios.overnight: a sweep with an out-of-memory, a NaN and a SIGKILLed trial, then resumed."""
    return _scenario(request, "overnight")


@pytest.fixture(scope="session")
def worker_killed(request):
    """scenarios.worker_killed: a parallel sweep (launcher=local) whose trial worker is SIGKILLed."""
    return _scenario(request, "worker_killed")


@pytest.fixture(scope="session")
def app_runs(request):
    """scenarios.app_run: twin_a and twin_b (same config and seed), disk_full."""
    return _scenario(request, "app_runs")


@pytest.fixture(scope="session")
def refused(request):
    """scenarios.refused: each bad-input case run as the command -> (process result, its output folder)."""
    return _scenario(request, "refused")
