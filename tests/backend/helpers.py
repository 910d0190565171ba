"""What the engine tests share: a recipe builder in the flat field names, and run options on the CPU."""

from __future__ import annotations

import dataclasses

from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import Recipe

CPU = RunOptions(device="cpu", precision="fp32", preview="off")


def options(**changes) -> RunOptions:
    return dataclasses.replace(CPU, **changes)


def recipe(model, prompt: str = "a red circle on the left", **changes) -> Recipe:
    base = Recipe.of(prompt, model_id=str(model), scheduler="DDIM", steps=4, guidance_scale=7.5, seed=1234)
    return base.with_(**changes)
