"""The error a job raises when its recipe cannot run: every problem, each tied to its field."""

from __future__ import annotations

from desktop_app.core.recipe import Problem


class InvalidRequest(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))
