"""A new per-step behaviour is one ``Hook``: it joins the one denoise loop without a change to it."""

from __future__ import annotations

import threading

import numpy as np
import torch

from desktop_app.backend.local.generate import run_generation
from desktop_app.backend.local.hooks import ClassifierFreeGuidance
from desktop_app.backend.local.loop import Hook
from tests.backend.helpers import CPU, recipe


class GuidanceInterval(Hook):
    """The smallest real example: classifier-free guidance only over the first ``until`` steps, the
    conditional prediction alone after them (a known trick: the late steps refine detail, where
    strong guidance over-saturates)."""

    def __init__(self, until: int):
        self.until = until
        self.cfg: ClassifierFreeGuidance | None = None

    def pre_loop(self, ctx) -> None:
        self.cfg = next(h for h in ctx.hooks if isinstance(h, ClassifierFreeGuidance))

    def pre_step(self, ctx, step) -> None:
        if step.index == self.until:
            self.cfg.scale = 1.0  # ε̄ = ε(∅) + 1·(ε(c) − ε(∅)) = ε(c)


class Record(Hook):
    def __init__(self):
        self.seen = []

    def post_step(self, ctx, step) -> None:
        self.seen.append((step.index, round(step.alpha_bar, 6), tuple(step.next_latents.shape)))


def _run(engine, tiny_model, hooks=()):
    r = engine.resolve(recipe(tiny_model, steps=6, guidance_scale=7.5), engine.model_info(str(tiny_model)))
    loaded = engine.load(str(tiny_model), CPU)
    steps = run_generation(loaded, r, CPU, threading.Event(), extra_hooks=hooks)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return np.asarray(stop.value.images[0], dtype=np.int16), stop.value


def test_a_hook_that_only_watches_changes_nothing_and_sees_every_step(engine, tiny_model):
    plain, _ = _run(engine, tiny_model)
    record = Record()
    watched, _ = _run(engine, tiny_model, [record])
    assert np.array_equal(plain, watched)
    assert [s[0] for s in record.seen] == list(range(6)) and record.seen[0][2] == (1, 4, 32, 32)
    alpha_bars = [s[1] for s in record.seen]
    assert alpha_bars == sorted(alpha_bars)  # ᾱ grows as the noise goes


def test_a_hook_that_changes_the_prediction_changes_the_picture(engine, tiny_model):
    plain, _ = _run(engine, tiny_model)
    scheduled, result = _run(engine, tiny_model, [GuidanceInterval(until=2)])
    unguided, _ = _run(engine, tiny_model, [GuidanceInterval(until=0)])
    assert result.images and not np.array_equal(scheduled, plain) and not np.array_equal(scheduled, unguided)
    assert torch.is_grad_enabled()  # hooks ran under no_grad inside, and left the global state alone
