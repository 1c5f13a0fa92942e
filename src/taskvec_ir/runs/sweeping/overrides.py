"""Settings handed to a sweep's jobs, written in Hydra's override grammar (what ``OverridesParser`` reads back)."""

from __future__ import annotations

import re
from collections.abc import Collection


def as_overrides(params: dict, lists: Collection[str] = ()) -> list[str]:
    """``key=value`` for each of ``params`` (values already in the grammar: a trial's parameters, fixed keys); the
    elements ``<key>.<i>`` of a key in ``lists`` (searched element by element: ``search_space.list_elements``)
    written as one ``key=[...]``."""
    overrides, elements = [], {}
    for name, value in params.items():
        key, _, index = name.rpartition(".")
        if key in lists and index.isdigit():
            elements.setdefault(key, {})[int(index)] = value
        else:
            overrides.append(f"{name}={value}")
    return overrides + [f"{key}=[{', '.join(str(v[i]) for i in sorted(v))}]" for key, v in elements.items()]


def hydra_value(value) -> str:
    """``value`` (mappings, lists, strings, numbers, booleans, None) written in Hydra's override grammar."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {hydra_value(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, str):
        # Hydra's quoted strings: a quote is escaped, and so are the backslashes before a quote or the closing one;
        # any other backslash is literal (doubling it, as before, doubled the value's backslashes).
        return "'" + re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), value) + "'"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
