"""Running the UNet once per step: eagerly, compiled (fast mode), or in low-VRAM mode.

A runner is called as ``noise = yield from runner(model_input, t, unet_kwargs, ctx)``: a generator
that may yield a warm-up update (fast mode's first call for a shape compiles for seconds or
minutes, and the user is told before it starts) and returns the noise prediction. The compiled
runner carries its fallback: any failure of the compiled UNet puts the model back on the eager
path for good, with a note saying why, and the step is computed eagerly.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import torch

from desktop_app.backend.local.loop import DenoiseContext, StepUpdate
from desktop_app.backend.local.performance import describe_error, out_of_memory


class EagerRunner:
    def __init__(self, unet):
        self.unet = unet

    def __call__(self, model_input: torch.Tensor, t, kwargs: dict, ctx: DenoiseContext) -> Generator[StepUpdate, None, torch.Tensor]:
        return self.unet(model_input, t, **kwargs, return_dict=False)[0]
        yield  # a generator, like the others  # noqa: B901


class LowMemoryRunner(EagerRunner):
    """Low-VRAM mode: the UNet sees the batch in two halves (for guidance: the negative prompt's
    half, then the prompt's), so its activations take half the memory at the same weights."""

    def __call__(self, model_input: torch.Tensor, t, kwargs: dict, ctx: DenoiseContext) -> Generator[StepUpdate, None, torch.Tensor]:
        n = model_input.shape[0]
        if n < 2:
            return self.unet(model_input, t, **kwargs, return_dict=False)[0]
        half = (n + 1) // 2
        parts = [self.unet(model_input[s], t, **_split(kwargs, s, n), return_dict=False)[0]
                 for s in (slice(0, half), slice(half, n))]
        return torch.cat(parts)
        yield  # noqa: B901


def _split(kwargs: dict, part: slice, n: int) -> dict:
    """The batch slice ``part`` of every tensor in ``kwargs`` whose first axis is the batch."""
    def cut(value):
        if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == n:
            return value[part]
        if isinstance(value, dict):
            return {k: cut(v) for k, v in value.items()}
        return value
    return {k: cut(v) for k, v in kwargs.items()}


class CompiledRunner:
    """Fast mode's compiled UNet (``performance.FastUNet``), with the way back to the eager one."""

    def __init__(self, loaded):
        self.loaded = loaded  # loader.LoadedModel: its ``fast`` is the compiled UNet

    def __call__(self, model_input: torch.Tensor, t, kwargs: dict, ctx: DenoiseContext) -> Generator[StepUpdate, None, torch.Tensor]:
        fast = self.loaded.fast
        if fast is None:  # fell back earlier in this job
            return self.loaded.pipe.unet(model_input, t, **kwargs, return_dict=False)[0]
        warm_up = fast.needs_warm_up(tuple(model_input.shape) + (model_input.dtype,))
        if warm_up:  # the next call compiles: say so before it starts
            yield ctx.clock.update(ctx.done, len(ctx.timesteps), phase="warm-up")
        started = time.perf_counter()
        try:
            noise = fast(model_input, t, **kwargs, return_dict=False)[0]
        except Exception as exc:
            if out_of_memory(exc):
                raise
            self.loaded.disable_fast()
            self.loaded.fast_failed = True
            ctx.notes.append(f"fast mode is off for this model: the compiled UNet failed ({describe_error(exc)}); "
                             "the normal path made this image")
            return self.loaded.pipe.unet(model_input, t, **kwargs, return_dict=False)[0]
        if warm_up:
            seconds = time.perf_counter() - started
            ctx.warm_up_seconds += seconds
            ctx.clock.exclude(seconds)  # speed and time left count denoising only
        return noise


def runner_for(loaded):
    if loaded.fast is not None:
        return CompiledRunner(loaded)
    if loaded.low_vram:
        return LowMemoryRunner(loaded.pipe.unet)
    return EagerRunner(loaded.pipe.unet)
