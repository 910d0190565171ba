"""What is wrong with a recipe, field by field, and the small checks every part of it shares."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe: ``field`` names the control it belongs to."""

    field: str
    message: str

    def __str__(self) -> str:
        name = {"prompt.text": "prompt", "prompt.negative": "negative prompt"}.get(self.field, self.field.rsplit(".", 1)[-1])
        return f"{name}: {self.message}"


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (never a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def check_range(problems: list[Problem], name: str, value: Any, low: float, high: float, what: str) -> None:
    if not is_number(value) or not low <= value <= high:
        problems.append(Problem(name, f"{what} must be a number from {low:g} to {high:g}, not {show(value)}"))


def check_whole(problems: list[Problem], name: str, value: Any, low: int, high: int, what: str) -> None:
    if not is_whole(value) or not low <= value <= high:
        problems.append(Problem(name, f"{what} must be a whole number from {low} to {high}, not {show(value)}"))


def check_choice(problems: list[Problem], name: str, value: Any, choices, what: str) -> None:
    if value not in choices:
        problems.append(Problem(name, f"{what} must be one of {', '.join(choices)}, not {show(value)}"))


MAX_SEED = 2**32 - 1
