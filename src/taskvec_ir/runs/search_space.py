"""A sweep's search space, read from Hydra's override grammar: what each swept key may take, as Optuna asks for it.

``interval(a, b)`` is a float (an int when both ends are ints; ``tag(log, interval(...))`` on a log scale),
``range(a, b[, step])`` the values Hydra's basic sweeper would take (``b`` excluded), ``choice(x, y, ...)``
(or ``x,y,...``) one of the listed values; ``int(...)`` and ``float(...)`` cast as in Hydra's grammar. Any
other override is a fixed value every trial gets. A swept key whose value is a list (a layer-group genome's
``alpha.genome.attention``) is searched element by element (``list_elements``). Parsed with Hydra's public override
parser; suggested through Optuna's public ``Trial.suggest_*``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer

from taskvec_ir.errors import UserError


@dataclass(frozen=True)
class Dimension:
    """One swept key: a float or int between ``low`` and ``high`` (with ``step``, on a ``log`` scale), or one of
    ``choices``."""

    kind: str  # float, int, categorical
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial, name: str):
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list:
        """Every value of a finite dimension (a grid sampler's search space)."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.step is None:
            raise UserError("a grid sampler needs finite choices: use choice(...) or range(...), not interval(...)")
        count = int(round((self.high - self.low) / self.step)) + 1
        return [
            self.low + i * self.step if self.kind == "int" else round(self.low + i * self.step, 12)
            for i in range(count)
        ]

    def describe(self) -> str:
        if self.kind == "categorical":
            return f"choice{tuple(self.choices)}"
        scale = " log" if self.log else ""
        step = f" step {self.step}" if self.step is not None else ""
        return f"{self.kind} [{self.low}, {self.high}]{step}{scale}"


def _dimension(override: Override) -> Dimension:
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices = tuple(override.sweep_iterator(transformer=Transformer.encode))
        for choice in choices:
            if not isinstance(choice, str | int | float | bool | type(None)):
                raise UserError(f"{override.input_line}: a choice must be a string, a number, a boolean or null")
        return Dimension("categorical", choices=choices)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise UserError(f"{override.input_line}: the range is empty")
        kind = "int" if all(isinstance(v, int) for v in (value.start, value.stop, value.step)) else "float"
        if kind == "float":  # Hydra's float range adds steps; a grid keeps its rounded values
            return Dimension("categorical", choices=tuple(round(v, 12) for v in values))
        return Dimension("int", low=values[0], high=values[-1], step=value.step)
    if isinstance(value, IntervalSweep):
        kind = "int" if isinstance(value.start, int) and isinstance(value.end, int) else "float"
        if not value.start < value.end:
            raise UserError(f"{override.input_line}: an interval needs start < end")
        return Dimension(kind, low=value.start, high=value.end, log="log" in value.tags)
    raise UserError(f"{override.input_line}: not a sweep Optuna can search (use interval, range or choice)")


def search_space(overrides: Sequence[str]) -> tuple[dict[str, Dimension], dict[str, Any]]:
    """(swept keys -> Dimension, fixed keys -> value string) of command-line style overrides; a later override
    of a key replaces an earlier one (the command line wins over ``hydra.sweeper.params``)."""
    dimensions: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.get_key_element()
        dimensions.pop(key, None)
        fixed.pop(key, None)
        if override.is_sweep_override():
            dimensions[key] = _dimension(override)
        else:
            fixed[key] = override.get_value_element_as_str()
    return dimensions, fixed


def list_elements(dimensions: dict[str, Dimension], config) -> tuple[dict[str, Dimension], tuple[str, ...]]:
    """The dimensions with each swept key whose value in ``config`` (the typed config) is a list replaced by one
    dimension per element, ``<key>.<i>``, each over the key's range (each gene of a genome searched on its own);
    and the keys so replaced (``overrides.as_overrides`` writes their elements back as one list)."""
    expanded: dict[str, Dimension] = {}
    lists = []
    for name, dimension in dimensions.items():
        value = config
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        if isinstance(value, list | tuple):
            if not value:
                raise UserError(f"{name}: the list to search element by element is empty")
            lists.append(name)
            expanded.update({f"{name}.{i}": dimension for i in range(len(value))})
        else:
            expanded[name] = dimension
    return expanded, tuple(lists)
