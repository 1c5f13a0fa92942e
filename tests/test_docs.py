"""Docs that cannot rot: every ``taskvec-ir`` command in README.md and docs/ is composed by Hydra and typed (a
renamed key, group or option fails here), every ``make`` target they name exists, and the blocks marked
``<!-- docs-test: run -->`` run as written, in a temporary folder, offline."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from taskvec_ir.config.composed import CONFIG_DIR, Task, parse_config, register

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"(?P<marker><!-- docs-test: run -->\s*\n)?```(?P<language>bash|sh|python)\n(?P<body>.*?)```", re.S)
# What a shell would put in place of the variables the docs use (a user's partition, storage, host).
SHELL = {
    "$SLURM_PARTITION": "debug",
    "$OPTUNA_STORAGE": "postgresql://user@db-host/optuna",
    "$(hostname)": "node1",
    "$$": "1234",
    "$HOME": "/home/user",
}


def blocks() -> list[tuple[str, int, bool, str, str]]:
    """(page, line, runs, language, body) of every shell and Python block of the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start("body")) + 1
            where = page.relative_to(REPO).as_posix()
            found.append((where, line, bool(match["marker"]), match["language"], match["body"]))
    return found


def commands(body: str) -> list[str]:
    """The block's commands: continuation lines joined, comments dropped, a shell variable the block sets
    (``S=model.domain.x=true``) put in place where a later line uses it (``$S``)."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines())
    found, variables = [], {}
    for line in lines:
        if not line or line.startswith("#"):
            continue
        assigned = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(\S+)", line)
        if assigned:
            variables[f"${assigned[1]}"] = assigned[2]
            continue
        for variable, value in variables.items():
            line = line.replace(variable, value)
        found.append(line)
    return found


def hydra_invocations(command: str) -> list[list[str]]:
    """The taskvec-ir argument lists a command line holds (``make demo ARGS="..."`` is ``taskvec-ir ...``)."""
    for variable, value in SHELL.items():
        command = command.replace(variable, value)
    words = shlex.split(command)
    found = []
    for start, word in enumerate(words):
        if word.endswith("taskvec-ir"):
            end = next((i for i in range(start + 1, len(words)) if words[i] in ("&&", "||", ";", "|")), len(words))
            found.append(words[start + 1 : end])
    if words[:1] == ["make"] and len(words) > 1:
        target_args = [shlex.split(w.split("=", 1)[1]) for w in words[2:] if w.startswith("ARGS=")]
        extra = target_args[0] if target_args else []
        defaults = {"demo": [], "table-demo": ["experiment=table_demo"], "sweep-demo": MAKE_SWEEP_DEMO}
        if words[1] in defaults:
            found.append([*defaults[words[1]], *extra])
    return found


MAKE_SWEEP_DEMO = shlex.split(
    re.search(r"^sweep-demo:.*\n\t\S+/taskvec-ir (.*) \$\(ARGS\)$", (REPO / "Makefile").read_text(), re.M)[1]
)
BLOCKS = blocks()
INVOCATIONS = [
    pytest.param(args, body, id=f"{page}:{line}:{' '.join(args)[:60]}")
    for page, line, _, language, body in BLOCKS
    if language != "python"
    for command in commands(body)
    for args in hydra_invocations(command)
]
PREPARES = ("mkdir ", "printf ")  # lines of a block that make a user's config files: run before composing
FLAGS_WITH_VALUE = ("--config-dir", "--config-name", "--cfg", "-cd", "-cn", "-c")


def split_arguments(args: list[str]) -> tuple[list[str], list[str], bool]:
    """(flags, overrides, multirun) of a taskvec-ir argument list."""
    flags, overrides, multirun, i = [], [], False, 0
    while i < len(args):
        word = args[i]
        if word in ("-m", "--multirun"):
            multirun = True
        elif word in FLAGS_WITH_VALUE:
            flags += [word, args[i + 1]]
            i += 1
        elif word.startswith("-"):
            flags.append(word)
        else:
            overrides.append(word)
        i += 1
    return flags, overrides, multirun


def first_values(overrides: list[str]) -> list[str]:
    """A sweep's overrides with each swept key at one of its values (what one trial composes)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    plain = []
    for override, text in zip(parsed, overrides, strict=True):
        if override.is_sweep_override():
            value = next(iter(override.sweep_string_iterator()))
            plain.append(f"{override.get_key_element()}={value}")
        else:
            plain.append(text)
    return plain


@pytest.mark.parametrize(("args", "body"), INVOCATIONS)
def test_every_documented_command_composes_and_types(args, body, tmp_path):
    flags, overrides, multirun = split_arguments(args)
    if set(flags) & {"--help", "--version", "-h"}:
        return  # checked by running them (tests/test_app.py)
    for command in commands(body):
        if command.startswith(PREPARES):
            subprocess.run(command, shell=True, cwd=tmp_path, check=True)
    config_dirs = [flags[i + 1] for i, flag in enumerate(flags) if flag in ("--config-dir", "-cd")]
    overrides = first_values(overrides) if multirun else overrides
    search = [f"hydra.searchpath=[{','.join(f'file://{(tmp_path / d).resolve()}' for d in config_dirs)}]"]
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        config = parse_config(compose("config", overrides=[*overrides, *(search if config_dirs else [])]))
    assert config.task in tuple(Task)  # typed: every key and choice of the command exists


MAKE_TARGETS = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


@pytest.mark.parametrize(
    "target",
    sorted({m for *_, body in BLOCKS for m in re.findall(r"^\s*make (?:-\S+ )*([a-z][\w-]*)", body, re.M)}),
)
def test_every_documented_make_target_exists(target):
    assert target in MAKE_TARGETS


RUNNABLE = [pytest.param(language, body, id=f"{page}:{line}") for page, line, runs, language, body in BLOCKS if runs]


@pytest.mark.slow
@pytest.mark.parametrize(("language", "body"), RUNNABLE)
def test_the_blocks_marked_to_run_run_as_written(language, body, tmp_path, mirror_dir):
    """Each marked block in a fresh folder, offline, with the venv's commands first on PATH: a shell block line by
    line, a Python block as one script."""
    env = {
        **os.environ,
        "TASKVEC_IR_MIRROR": str(mirror_dir),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    steps = commands(body) if language != "python" else [f"{sys.executable} -c {shlex.quote(body)}"]
    for command in steps:
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_docs_hold_commands_to_check():
    assert len(INVOCATIONS) > 30 and RUNNABLE


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path):
    """mkdocs build --strict, as CI's `make docs`: a broken link or anchor, a page left out of the nav or a missing
    snippet fails it."""
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "index.html").exists()
