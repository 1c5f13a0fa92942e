"""What every config group checks its values with: a choice among named values, a finite number, a positive
count, λ, and a mapping typed as a group's dataclass (``parse``). Each failure is one ``UserError`` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from taskvec_ir.errors import UserError

T = TypeVar("T")


class Choice(StrEnum):
    """A key's choices, made as ``Choice("Backend", ["inverted_index", ...])``: each member is named and valued as
    it is written, since OmegaConf matches the string a user writes against the members' *names*. A member equals
    its string, and prints as it (in a list or a dict too)."""

    __repr__ = str.__repr__


def choice(kind: type[Choice], value: str, key: str) -> str:
    """``value``, checked to be one of ``kind``, as the plain string: Hydra gives a member, a dataclass built in
    Python the string written, and a config holds what it held before its choices were typed (W&B types a table's
    column by its values' exact class, and a member is not a ``str`` to it)."""
    try:
        return kind(value).value
    except ValueError:
        raise UserError(f"{key}: '{value}' is not one of {', '.join(kind)}") from None


def finite(value: float, key: str) -> float:
    if not math.isfinite(value):
        raise UserError(f"{key}: {value!r} must be a finite number")
    return value


def positive(value: int, key: str) -> int:
    if value <= 0:
        raise UserError(f"{key}: {value} must be positive")
    return value


def check_lambda(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or math.isnan(lam) or not 0 <= lam <= 1:
        raise UserError(f"lam.value: {lam!r} must be a number in [0, 1] (the weight of BM25 in the fusion)")
    return float(lam)


def parse(schema: type[T], values: Mapping, key: str = "") -> T:
    """``values`` as an instance of the dataclass ``schema``, typed and checked as Hydra types a config, reading no
    file: an unknown key, a wrong type, a value that is not a choice or a missing value is a ``UserError`` naming
    ``key.<field>``. For a node that may hold either a string or a mapping (``model.domain``), which a schema cannot
    type, and for configs built from YAML in Python."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), values))
    except OmegaConfBaseException as error:
        where = ".".join(part for part in (key, str(error.full_key or "")) if part)
        raise UserError(f"{where}: {str(error.msg).splitlines()[0]}") from None
