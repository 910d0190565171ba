"""One generation, stage by stage: encode → prepare latents → denoise → decode.

It follows diffusers' Stable Diffusion pipelines step for step (the same prompt encoding, initial
noise, scheduler calls and decode), so the same settings give the same pixels, and adds what a
desktop app needs through the loop's hooks: previews of x̂₀, cancellation within one step,
classifier guidance. ``run_generation`` is a generator of ``StepUpdate``s that returns the
``GenerationResult``.
"""

from __future__ import annotations

import inspect
import secrets
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

import torch
from PIL import Image

from desktop_app.backend.local.decode import Decoder
from desktop_app.backend.local.families import family_for
from desktop_app.backend.local.hooks import (
    CancelHook,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    PreviewHook,
)
from desktop_app.backend.local.loader import LoadedModel
from desktop_app.backend.local.loop import DenoiseContext, Hook, StepUpdate, denoise
from desktop_app.backend.local.performance import wants_tiling
from desktop_app.backend.local.prepare import latent_preparation
from desktop_app.backend.local.previews import Previewer
from desktop_app.backend.local.runner import runner_for
from desktop_app.backend.local.schedulers import build_scheduler
from desktop_app.core.models import ModelInfo
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import MAX_SEED, Problem, Recipe
from desktop_app.core.schedulers import get_spec


class InvalidRequest(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class GenerationResult:
    recipe: Recipe  # fully resolved: seed and size filled in
    model: ModelInfo
    images: list[Image.Image] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    cancelled: bool = False
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = ""
    precision: str = ""
    notes: list[str] = field(default_factory=list)  # what the engine changed, e.g. a fp32 re-decode
    lora_hashes: dict[str, str] = field(default_factory=dict)  # A1111's "Lora hashes": name -> short hash
    ti_hashes: dict[str, str] = field(default_factory=dict)  # A1111's "TI hashes"


def pick_seed(batch_size: int) -> int:
    return secrets.randbelow(MAX_SEED - batch_size + 2)


@dataclass
class Job:
    """One generation's fixed inputs, shared by its stages."""

    loaded: LoadedModel
    recipe: Recipe  # resolved
    options: RunOptions
    cancel: threading.Event
    max_fps: float
    extra_hooks: tuple[Hook, ...] = ()

    def __post_init__(self) -> None:
        output = self.recipe.output
        self.batch, self.width, self.height = output.batch_size, output.width, output.height
        self.device = self.loaded.placement.device
        self.dtype = self.loaded.placement.dtype
        self.generators = [torch.Generator("cpu").manual_seed(output.seed + k) for k in range(self.batch)]


def run_generation(
    loaded: LoadedModel, recipe: Recipe, options: RunOptions, cancel: threading.Event | None = None, *,
    max_fps: float | None = None, extra_hooks: Sequence[Hook] = (),
) -> Generator[StepUpdate, None, GenerationResult]:
    """Generate images for an already validated and resolved ``recipe`` (seed and size set).

    ``extra_hooks`` join the job's own hooks, after them (see ``loop.Hook``)."""
    job = Job(loaded, recipe, options, cancel or threading.Event(), options.preview_max_fps if max_fps is None else max_fps,
              tuple(extra_hooks))
    vae = loaded.pipe.vae
    tile = wants_tiling(options.vae_tiling, loaded.low_vram, (job.width, job.height), loaded.info.native_size)
    switched = tile and not getattr(vae, "use_tiling", False)
    if switched:
        vae.enable_tiling()
    try:
        result = yield from _generate(job)
    finally:
        if switched:
            vae.disable_tiling()
    latent_side = max(job.width, job.height) // loaded.info.latent_factor
    if tile and result.images and not loaded.low_vram and latent_side > getattr(vae, "tile_latent_min_size", latent_side):
        result.notes.append("the image was decoded in tiles to save memory (it is larger than twice the model's native area)")
    return result


def _generate(job: Job) -> Generator[StepUpdate, None, GenerationResult]:
    loaded, recipe = job.loaded, job.recipe
    pipe, info = loaded.pipe, loaded.info
    result = GenerationResult(recipe, info, device=str(job.device), precision=loaded.placement.precision)
    result.notes.extend(loaded.pending_notes)
    loaded.pending_notes.clear()
    started = time.perf_counter()
    decoder = Decoder(pipe)
    scheduler = build_scheduler(recipe.sampling.scheduler, info.scheduler_config, ddpm_variance=recipe.sampling.ddpm_variance)
    guided = recipe.guidance.scale != 1.0
    with torch.no_grad():
        conditioning = family_for(info).encode(pipe, recipe.prompt, job.device, job.batch, guided, (job.width, job.height))
        result.warnings.extend(conditioning.warnings)
        scheduler.set_timesteps(recipe.sampling.steps, device=job.device)
        latents, timesteps = latent_preparation(job).prepare(job, scheduler, scheduler.timesteps)
        previewer = Previewer(job.options.preview, factors=info.preview_factors, decode=decoder.decode,
                              every=job.options.preview_every, max_fps=job.max_fps)
        ctx = DenoiseContext(scheduler, timesteps, conditioning, runner_for(loaded), hooks_for(job, previewer, guided),
                             prediction_type=scheduler.config.get("prediction_type", "epsilon"),
                             step_kwargs=_step_kwargs(job, scheduler), notes=result.notes)
        result.timings["prepare"] = time.perf_counter() - started
        latents = yield from denoise(ctx, latents)
        if ctx.warm_up_seconds:
            result.timings["warm-up"] = ctx.warm_up_seconds
        if latents is None or job.cancel.is_set():
            result.cancelled = True
            result.timings["total"] = time.perf_counter() - started
            return result
        result.timings["denoise"] = time.perf_counter() - started - result.timings["prepare"] - ctx.warm_up_seconds
        decode_start = time.perf_counter()
        result.images = decoder.images(latents, job.generators, result.notes)
        result.timings["decode"] = time.perf_counter() - decode_start
    result.seeds = [recipe.output.seed + k for k in range(job.batch)]
    result.timings["total"] = time.perf_counter() - started
    return result


def hooks_for(job: Job, previewer: Previewer, guided: bool) -> list[Hook]:
    """The hooks this job needs, in the order they run."""
    hooks: list[Hook] = [CancelHook(job.cancel)]
    guidance = job.recipe.guidance
    if guided:
        hooks.append(ClassifierFreeGuidance(guidance.scale))
    classifier = job.loaded.classifier
    if guidance.classifier_on and classifier is not None:
        hooks.append(ClassifierGuidance(classifier, classifier.target_indices(guidance.classifier_target), guidance.classifier_scale))
    hooks.extend(job.extra_hooks)
    if previewer.enabled:
        hooks.append(PreviewHook(previewer))
    return hooks


def _step_kwargs(job: Job, scheduler) -> dict:
    """η for DDIM; the step noise's generators for stochastic schedulers (A1111's ENSD: their own seeds)."""
    sampling, params = job.recipe.sampling, set(inspect.signature(scheduler.step).parameters)
    kwargs = {}
    if "eta" in params and get_spec(sampling.scheduler).takes_eta:
        kwargs["eta"] = sampling.eta
    if "generator" in params:
        delta, seed = sampling.noise_seed_delta, job.recipe.output.seed
        kwargs["generator"] = ([torch.Generator("cpu").manual_seed(seed + k + delta) for k in range(job.batch)]
                               if delta else job.generators)
    return kwargs
