"""MkDocs hook: ``docs/reference.md``'s key tables, generated from the config dataclasses when the site is built, so
the reference cannot disagree with the code: every key, its type or choices, its default, and the comment the code
keeps beside it. Also the options of every config group, from ``conf/``."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
import typing
from enum import Enum
from pathlib import Path

KEYS = "<!-- configuration-keys -->"
GROUPS = "<!-- configuration-groups -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if KEYS in markdown:
        markdown = markdown.replace(KEYS, key_tables())
    if GROUPS in markdown:
        markdown = markdown.replace(GROUPS, group_table(Path(config["config_file_path"]).parent / "conf"))
    return markdown


def key_tables() -> str:
    from taskvec_ir.config.composed import Config

    sections: dict[str, list[tuple[str, str, str, str]]] = {}
    for key, kind, default, comment in fields_of(Config):
        top = key.split(".")[0] if "." in key else "top level"
        sections.setdefault(top, []).append((key, kind, default, comment))
    out = []
    for section, rows in sections.items():
        out.append(f"### `{section}`\n" if section != "top level" else "### Top-level keys\n")
        out.append("| key | type | default | what it is |\n|---|---|---|---|")
        out += [f"| `{key}` | {kind} | {default} | {comment} |" for key, kind, default, comment in rows]
        out.append("")
    return "\n".join(out)


def fields_of(schema: type, prefix: str = ""):
    """(key, type, default, comment) of every field of the dataclass ``schema``, nested dataclasses expanded."""
    hints = typing.get_type_hints(schema)
    comments = field_comments(schema)
    for field in dataclasses.fields(schema):
        key, hint = f"{prefix}{field.name}", hints[field.name]
        nested = next((t for t in _members(hint) if dataclasses.is_dataclass(t)), None)
        if nested is not None and field.name != "sweep":  # sweep: set by the sweeper, documented in sweeps.md
            yield key, _type(hint), _default(field), comments.get(field.name, "")
            yield from fields_of(nested, f"{key}.")
            continue
        yield key, _type(hint), _default(field), comments.get(field.name, "")


def field_comments(schema: type) -> dict[str, str]:
    """The comment beside each field in the source: on its line, or the comment lines just above it."""
    lines, _ = inspect.getsourcelines(schema)
    source = textwrap.dedent("".join(lines))
    trailing = {tok.start[0]: tok.string.lstrip("# ") for tok in _tokens(source) if tok.type == tokenize.COMMENT}
    found = {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line, above = node.lineno, []
            own = trailing.get(line) if not source.splitlines()[line - 1].lstrip().startswith("#") else None
            previous = line - 1
            while previous in trailing and source.splitlines()[previous - 1].lstrip().startswith("#"):
                above.insert(0, trailing[previous])
                previous -= 1
            found[node.target.id] = " ".join([*above, *([own] if own else [])]).replace("|", "\\|")
    return found


def _tokens(source: str):
    try:
        yield from tokenize.generate_tokens(io.StringIO(source).readline)
    except tokenize.TokenError:
        return


def _members(hint) -> tuple:
    return typing.get_args(hint) or (hint,)


def _type(hint) -> str:
    members = [m for m in _members(hint) if m is not type(None)]
    optional = len(members) < len(_members(hint))
    if typing.get_origin(hint) in (list, dict):
        text = _plain(hint)
    elif len(members) == 1 and inspect.isclass(members[0]) and issubclass(members[0], Enum):
        text = "one of " + ", ".join(f"`{m.value}`" for m in members[0])
    else:
        text = " or ".join(_plain(m) for m in members)
    return text + (" or null" if optional else "")


def _plain(hint) -> str:
    if dataclasses.is_dataclass(hint):
        return "mapping"
    if hint is typing.Any:
        return "any"
    origin = typing.get_origin(hint)
    if origin is list:
        return f"list of {_plain(typing.get_args(hint)[0])}"
    if origin is dict:
        return "mapping"
    if inspect.isclass(hint) and issubclass(hint, Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in hint)
    return getattr(hint, "__name__", str(hint))


def _default(field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(below)"
    if isinstance(value, str) and value == "???":
        return "required"
    text = json.dumps(value.value if isinstance(value, Enum) else value, default=str, ensure_ascii=False)
    return f"`{text}`".replace("|", "\\|")


def group_table(conf: Path) -> str:
    """Each config group of ``conf/`` and its options, with the first line of each option's leading comment."""
    rows = ["| group | option | what it is |", "|---|---|---|"]
    for folder in sorted(p for p in conf.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for option in sorted(folder.glob("*.yaml")):
            lines = option.read_text().splitlines()
            comment = next(
                (line.lstrip("# ").strip() for line in lines if line.startswith("#") and "@package" not in line), ""
            )
            escaped = comment.replace("|", "\\|")
            rows.append(f"| `{folder.name}` | `{option.stem}` | {escaped} |")
    return "\n".join(rows)
