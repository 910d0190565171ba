"""The one denoise loop, and the points where hooks join it.

The loop is the reverse process and nothing else: scale the input, run the UNet, take the
scheduler's step. Everything a job adds (classifier-free guidance, classifier guidance, previews,
cancellation; later the inpainting blend or ControlNet) is a ``Hook`` with methods called at fixed
points of each step:

    pre_step   before anything: may stop the loop (cancel) or change the latents
    pre_unet   may change the UNet's input and conditioning (guidance doubles the batch)
    post_unet  may change the noise prediction (guidance combines, the classifier shifts it)
    post_step  after the scheduler's step: may change the next latents, make a preview

Hooks run in the order given; a new hook needs no change here. The UNet call itself is the
runner's (``runner.py``): eager, compiled or offloaded, each a generator that may announce a
compile warm-up before it returns the prediction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class StepUpdate:
    step: int  # 1-based: steps done so far (0 for a warm-up before the first)
    total: int
    elapsed: float  # seconds of denoising since the loop started (compile warm-ups excluded)
    its_per_sec: float
    preview: np.ndarray | None = None  # (H, W, 3) uint8, a batch tiled into one grid
    phase: str = "denoise"  # "warm-up": fast mode is compiling the UNet before the next step

    @property
    def eta_seconds(self) -> float:
        return (self.total - self.step) / self.its_per_sec if self.its_per_sec > 0 else float("nan")


class Clock:
    """Seconds of denoising, without the time a compile warm-up took."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def exclude(self, seconds: float) -> None:
        self.start += seconds

    def update(self, step: int, total: int, preview=None, phase: str = "denoise") -> StepUpdate:
        elapsed = time.perf_counter() - self.start
        rate = step / elapsed if elapsed > 0 and step else 0.0
        return StepUpdate(step, total, elapsed, rate, preview, phase)


@dataclass
class Step:
    """One step's working state, shared by the loop and its hooks."""

    index: int
    t: torch.Tensor  # the scheduler's timestep (on the device)
    time: float  # the same timestep as a float (read once, before the loop)
    alpha_bar: float  # ᾱ at that timestep
    latents: torch.Tensor  # the scheduler's sample at this step
    x_t: torch.Tensor | None = None  # the scaled model input: the variance-preserving x_t, one copy per image
    model_input: torch.Tensor | None = None
    unet_kwargs: dict[str, Any] = field(default_factory=dict)
    noise_pred: torch.Tensor | None = None
    output: Any = None  # the scheduler's step output
    next_latents: torch.Tensor | None = None
    preview: np.ndarray | None = None
    stop: bool = False

    def x0(self, prediction_type: str) -> torch.Tensor:
        """The clean-latent estimate x̂₀: the scheduler's own when it gives one, else formed from
        the noise prediction."""
        x0 = getattr(self.output, "pred_original_sample", None)
        if x0 is not None and x0.shape == self.latents.shape:
            return x0
        return x0_estimate(self.x_t.float(), self.noise_pred.float(), self.alpha_bar, prediction_type)


def x0_estimate(x_t: torch.Tensor, prediction: torch.Tensor, alpha_bar: float, prediction_type: str) -> torch.Tensor:
    """x̂₀ = (x_t − √(1−ᾱ)·ε̂)/√ᾱ for an ε-prediction, √ᾱ·x_t − √(1−ᾱ)·v̂ for a v-prediction."""
    a, s = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    return a * x_t - s * prediction if prediction_type == "v_prediction" else (x_t - s * prediction) / a


def alpha_bars(scheduler, times: list[float]) -> list[float]:
    """ᾱ at each of the sampler's (possibly fractional) training timesteps, by linear interpolation."""
    table = scheduler.alphas_cumprod.detach().to("cpu", torch.float64).numpy()
    return np.interp(np.asarray(times, dtype=np.float64), np.arange(len(table)), table).tolist()


class Hook:
    """A no-op at every point; subclasses override what they need."""

    def pre_loop(self, ctx: DenoiseContext) -> None: ...

    def pre_step(self, ctx: DenoiseContext, step: Step) -> None: ...

    def pre_unet(self, ctx: DenoiseContext, step: Step) -> None: ...

    def post_unet(self, ctx: DenoiseContext, step: Step) -> None: ...

    def post_step(self, ctx: DenoiseContext, step: Step) -> None: ...


@dataclass
class DenoiseContext:
    """What stays fixed during one denoise loop."""

    scheduler: Any
    timesteps: torch.Tensor
    conditioning: Any  # families.Conditioning
    runner: Any  # runner.UNetRunner
    hooks: Sequence[Hook]
    prediction_type: str = "epsilon"
    step_kwargs: dict[str, Any] = field(default_factory=dict)  # eta, generator for the scheduler's step
    clock: Clock = field(default_factory=Clock)
    notes: list[str] = field(default_factory=list)  # what changed to make the job work (told with the result)
    times: list[float] = field(default_factory=list)
    alpha_bars: list[float] = field(default_factory=list)
    done: int = 0  # steps finished so far
    warm_up_seconds: float = 0.0  # spent compiling (fast mode), not denoising

    def __post_init__(self) -> None:
        # Read back once, before the loop: reading a timestep from the GPU inside the loop would
        # make the CPU wait for the GPU at every preview.
        self.times = self.timesteps.detach().cpu().tolist()
        self.alpha_bars = alpha_bars(self.scheduler, self.times)


def denoise(ctx: DenoiseContext, latents: torch.Tensor) -> Generator[StepUpdate, None, torch.Tensor | None]:
    """Run the reverse process from ``latents``; returns the final latents, or None when a hook stopped it."""
    hooks, total = ctx.hooks, len(ctx.timesteps)
    for hook in hooks:
        hook.pre_loop(ctx)
    ctx.clock = Clock()
    for i, t in enumerate(ctx.timesteps):
        ctx.done = i
        step = Step(i, t, ctx.times[i], ctx.alpha_bars[i], latents)
        for hook in hooks:
            hook.pre_step(ctx, step)
        if step.stop:
            return None
        step.x_t = ctx.scheduler.scale_model_input(step.latents, t)
        step.model_input = step.x_t
        step.unet_kwargs = ctx.conditioning.unet_kwargs(with_negative=False)
        for hook in hooks:
            hook.pre_unet(ctx, step)
        step.noise_pred = yield from ctx.runner(step.model_input, t, step.unet_kwargs, ctx)
        for hook in hooks:
            hook.post_unet(ctx, step)
        step.output = ctx.scheduler.step(step.noise_pred, t, step.latents, **ctx.step_kwargs, return_dict=True)
        step.next_latents = step.output.prev_sample
        for hook in hooks:
            hook.post_step(ctx, step)
        latents = step.next_latents
        yield ctx.clock.update(i + 1, total, step.preview)
    return latents
