"""A sweep's search space and objective, checked against the parameter declarations.

A space maps sweepable parameters (webapp.experiments.params, `sweep=True`) to one of
  {"type": "choice", "values": [...]}                 any declared type
  {"type": "uniform" | "log_uniform", "low", "high"}  float parameters (log_uniform: low > 0)
  {"type": "int", "low", "high"}                      int parameters (log scale where declared)
Every value and bound must be one the parameter itself accepts, so a sweep can never ask a trial
for a learning rate the launch form would refuse. `distributions` turns a checked space into
Optuna's distributions; a grid needs every parameter as a list of values (an int range of at most
MAX_GRID_VALUES is listed for it).
"""

from __future__ import annotations

import math

from rest_framework import serializers

from webapp.experiments.params import DECLARATIONS, Param
from webapp.jobs import registry
from webapp.jobs.registry import Objective

MAX_PARAMS = 10
MAX_CHOICES = 50
MAX_GRID_VALUES = 50
MAX_GRID_SIZE = 10_000


def sweep_kinds() -> list[str]:
    """The kinds a sweep can run: those that declare what it may optimise (webapp.jobs.registry)."""
    return [kind.name for kind in registry.sweepable()]


def objectives(kind: str) -> dict[str, Objective]:
    """{metric: Objective} a sweep of `kind` may optimise."""
    return {o.name: o for o in registry.get(kind).objectives}


def sweepable(kind: str) -> list[Param]:
    return [p for p in DECLARATIONS[kind].params if p.sweep]


def _accepts(param: Param, value, where: str):
    """`value` as the parameter's own field cleans it, or a ValidationError naming `where`."""
    try:
        return param.field().run_validation(value)
    except serializers.ValidationError as exc:
        detail = exc.detail[0] if isinstance(exc.detail, list) else exc.detail
        raise serializers.ValidationError(f"{where}: {detail}") from None


def check_space(kind: str, space) -> dict:
    """The space, cleaned (numbers as the parameters take them), or a ValidationError with one sentence
    per bad entry: {name: [sentence]}."""
    if not isinstance(space, dict) or not space:
        raise serializers.ValidationError("Give at least one parameter to search, e.g. "
                                          '{"learning_rate": {"type": "log_uniform", "low": 0.0001, "high": 0.1}}.')
    if len(space) > MAX_PARAMS:
        raise serializers.ValidationError(f"Search at most {MAX_PARAMS} parameters at once.")
    declared = DECLARATIONS[kind]
    names = ", ".join(p.name for p in sweepable(kind))
    clean, errors = {}, {}
    for name, spec in space.items():
        try:
            if name not in declared or not declared[name].sweep:
                raise serializers.ValidationError(f"{str(name)[:40]!r} cannot be searched; these can: {names}.")
            clean[name] = _check_one(declared[name], spec)
        except serializers.ValidationError as exc:
            errors[str(name)[:40]] = exc.detail if isinstance(exc.detail, list) else [exc.detail]
    if errors:
        raise serializers.ValidationError(errors)
    return clean


def _check_one(param: Param, spec) -> dict:
    if not isinstance(spec, dict) or spec.get("type") not in ("choice", "uniform", "log_uniform", "int"):
        raise serializers.ValidationError(
            'Describe it as {"type": "choice", "values": [...]}, {"type": "uniform" or "log_uniform", '
            '"low": ..., "high": ...} or {"type": "int", "low": ..., "high": ...}.')
    kind = spec["type"]
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise serializers.ValidationError("A choice needs a non-empty list of values.")
        if len(values) > MAX_CHOICES:
            raise serializers.ValidationError(f"A choice can list at most {MAX_CHOICES} values.")
        cleaned = []
        for value in values:
            value = _accepts(param, value, f"{value!r}"[:40])
            if value not in cleaned:
                cleaned.append(value)
        return {"type": "choice", "values": cleaned}
    if kind == "int" and param.type != "int":
        raise serializers.ValidationError(f"{param.label} is not a whole number; use uniform, log_uniform or choice.")
    if kind in ("uniform", "log_uniform") and param.type != "float":
        wanted = "int or choice" if param.type == "int" else "choice"
        raise serializers.ValidationError(f"{param.label} is not a real number; use {wanted}.")
    low, high = (_accepts(param, spec.get(end), end) for end in ("low", "high"))
    if low is None or high is None:
        raise serializers.ValidationError("A range needs both low and high.")
    if not low < high:
        raise serializers.ValidationError(f"low ({low}) must be below high ({high}).")
    log = kind == "log_uniform" or (kind == "int" and param.log)
    if log and low <= 0:
        raise serializers.ValidationError("A log scale needs low above 0.")
    return {"type": kind, "low": low, "high": high, **({"log": True} if kind == "int" and log else {})}


def grid_values(space: dict) -> dict[str, list]:
    """Every parameter's grid values, or a ValidationError saying which cannot be listed."""
    grid, errors = {}, {}
    for name, spec in space.items():
        if spec["type"] == "choice":
            grid[name] = spec["values"]
        elif spec["type"] == "int" and spec["high"] - spec["low"] + 1 <= MAX_GRID_VALUES:
            grid[name] = list(range(spec["low"], spec["high"] + 1))
        else:
            errors[name] = ["A grid tries listed values: give this parameter as "
                            '{"type": "choice", "values": [...]}' + (
                                f" (or an int range of at most {MAX_GRID_VALUES} values)."
                                if spec["type"] == "int" else ".")]
    if errors:
        raise serializers.ValidationError(errors)
    return grid


def grid_size(space: dict) -> int:
    return math.prod(len(values) for values in grid_values(space).values())


def distributions(space: dict) -> dict:
    """Optuna's distribution for every parameter of a checked space."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    made = {}
    for name, spec in space.items():
        if spec["type"] == "choice":
            made[name] = CategoricalDistribution(spec["values"])
        elif spec["type"] == "int":
            made[name] = IntDistribution(spec["low"], spec["high"], log=bool(spec.get("log")))
        else:
            made[name] = FloatDistribution(spec["low"], spec["high"], log=spec["type"] == "log_uniform")
    return made


def check_objective(kind: str, objective) -> tuple[str, str]:
    """(metric, direction) from {"metric", "direction"}; the direction defaults to the metric's own."""
    objective = objective if isinstance(objective, dict) else {}
    options = objectives(kind)
    metric = objective.get("metric") or "val_accuracy"
    if not isinstance(metric, str) or metric not in options:
        raise serializers.ValidationError({"metric": [
            f"{str(metric)[:40]!r} is not recorded by these runs; choose one of {', '.join(options)}."]})
    direction = objective.get("direction") or options[metric].default_direction
    if not isinstance(direction, str) or direction not in ("max", "min"):
        raise serializers.ValidationError({"direction": ['direction is "max" or "min".']})
    return metric, direction
