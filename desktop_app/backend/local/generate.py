"""One generation, stage by stage: encode → prepare latents → denoise → decode (→ paste back).

It follows diffusers' Stable Diffusion pipelines step for step (the same prompt encoding, initial
noise, scheduler calls and decode), so the same settings give the same pixels, and adds what a
desktop app needs through the loop's hooks: previews of x̂₀, cancellation within one step,
classifier guidance, inpainting. How a picture starts (from noise, from a picture, inside a mask)
is the preparation stage's business (``prepare.py``).

A job is a sequence of passes. Most have one; a hires fix adds a second: the first pass's latents
upscaled (or its pixels, Lanczos), then image to image over the end of a second schedule, on the
same model or another loaded one (an SDXL refiner). Progress counts the steps that actually run,
over all passes. ``run_generation`` is a generator of ``StepUpdate``s that returns the
``GenerationResult``.
"""

from __future__ import annotations

import dataclasses
import inspect
import secrets
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from desktop_app.backend.local.decode import Decoder
from desktop_app.backend.local.errors import InvalidRequest
from desktop_app.backend.local.families import family_for
from desktop_app.backend.local.hooks import (
    CancelHook,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    InpaintBlend,
    InpaintConditioning,
    PreviewHook,
)
from desktop_app.backend.local.loader import LoadedModel
from desktop_app.backend.local.loop import DenoiseContext, Hook, StepUpdate, denoise
from desktop_app.backend.local.performance import wants_tiling
from desktop_app.backend.local.prepare import Prepared, latent_preparation, mask_processor
from desktop_app.backend.local.previews import Previewer
from desktop_app.backend.local.runner import runner_for
from desktop_app.backend.local.schedulers import build_scheduler
from desktop_app.backend.local.sources import SourcePictures, load_source
from desktop_app.core.image_parts import steps_left
from desktop_app.core.models import ModelInfo
from desktop_app.core.options import RunOptions
from desktop_app.core.recipe import MAX_SEED, Recipe
from desktop_app.core.schedulers import get_spec

__all__ = ["GenerationResult", "InvalidRequest", "Job", "hooks_for", "pick_seed", "run_generation"]


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
    passes: list[dict[str, Any]] = field(default_factory=list)  # per pass: model, size, schedule steps, steps run


def pick_seed(batch_size: int) -> int:
    return secrets.randbelow(MAX_SEED - batch_size + 2)


@dataclass
class Job:
    """One pass's fixed inputs, shared by its stages."""

    loaded: LoadedModel
    recipe: Recipe  # resolved; a hires pass's has its size and steps
    options: RunOptions
    cancel: threading.Event
    max_fps: float
    extra_hooks: tuple[Hook, ...] = ()
    pictures: SourcePictures | None = None  # the source file's pictures (image to image, inpainting)
    init_latents: torch.Tensor | None = None  # a hires pass's upscaled latents
    init_pixels: torch.Tensor | None = None  # … or its upscaled pixels, (B, 3, H, W) in [-1, 1]
    strength: float = 1.0
    resize_seed: bool = True  # "seed resize from" applies (not to a hires pass)

    def __post_init__(self) -> None:
        output = self.recipe.output
        self.batch, self.width, self.height = output.batch_size, output.width, output.height
        self.steps = self.recipe.sampling.steps
        self.device = self.loaded.placement.device
        self.dtype = self.loaded.placement.dtype
        self.seeds = self.recipe.image_seeds()
        self.generators = [torch.Generator("cpu").manual_seed(seed) for seed in self.seeds]
        self.variation = self.recipe.variation
        source = self.recipe.source
        self.masked_content = source.inpaint.content if source is not None else "original"


@dataclass
class Pass:
    """A job and its schedule: the scheduler, all its timesteps, and how many of them run."""

    job: Job
    scheduler: Any
    timesteps: torch.Tensor
    runs: int


def plan_pass(job: Job) -> Pass:
    sampling = job.recipe.sampling
    scheduler = build_scheduler(sampling.scheduler, job.loaded.info.scheduler_config, ddpm_variance=sampling.ddpm_variance)
    scheduler.set_timesteps(job.steps, device=job.device)
    timesteps = scheduler.timesteps
    cut = (job.steps - steps_left(job.steps, job.strength)) * scheduler.order if job.strength < 1.0 else 0
    return Pass(job, scheduler, timesteps, len(timesteps) - cut)


def run_generation(
    loaded: LoadedModel, recipe: Recipe, options: RunOptions, cancel: threading.Event | None = None, *,
    max_fps: float | None = None, second: LoadedModel | None = None, extra_hooks: Sequence[Hook] = (),
) -> Generator[StepUpdate, None, GenerationResult]:
    """Generate images for an already validated and resolved ``recipe`` (seed and size set);
    ``second`` is the hires pass's model when it is not ``loaded``.

    ``extra_hooks`` join the job's own hooks, after them (see ``loop.Hook``)."""
    fps = options.preview_max_fps if max_fps is None else max_fps
    job = Job(loaded, recipe, options, cancel or threading.Event(), fps, tuple(extra_hooks),
              strength=recipe.source.strength if recipe.source is not None else 1.0)
    width, height = job.width, job.height
    if recipe.hires is not None:
        width, height = recipe.hires.size_for(width, height, loaded.info.latent_factor)
    models = [loaded] + ([second] if second is not None and second is not loaded else [])
    tile = wants_tiling(options.vae_tiling, loaded.low_vram, (width, height), loaded.info.native_size)
    switched = [m.pipe.vae for m in models if tile and not getattr(m.pipe.vae, "use_tiling", False)]
    for vae in switched:
        vae.enable_tiling()
    try:
        result = yield from _generate(job, second or loaded)
    finally:
        for vae in switched:
            vae.disable_tiling()
    latent_side = max(width, height) // loaded.info.latent_factor
    vae = loaded.pipe.vae
    if tile and result.images and not loaded.low_vram and latent_side > getattr(vae, "tile_latent_min_size", latent_side):
        result.notes.append("the image was decoded in tiles to save memory (it is larger than twice the model's native area)")
    return result


def _generate(job: Job, hires_model: LoadedModel) -> Generator[StepUpdate, None, GenerationResult]:
    loaded, recipe = job.loaded, job.recipe
    result = GenerationResult(recipe, loaded.info, device=str(job.device), precision=loaded.placement.precision)
    for model in {id(m): m for m in (loaded, hires_model)}.values():
        result.notes.extend(model.pending_notes)
        model.pending_notes.clear()
    started = time.perf_counter()
    with torch.no_grad():
        if recipe.source is not None:
            pipe = loaded.pipe
            job.pictures = load_source(recipe.source, (job.width, job.height), pipe.image_processor, mask_processor(pipe))
        passes = [plan_pass(job)]
        if recipe.hires is not None:
            passes.append(plan_pass(_hires_job(job, hires_model, None, None)))
        total = sum(p.runs for p in passes)
        result.timings["prepare"] = time.perf_counter() - started
        done, elapsed, latents, prepared = 0, 0.0, None, None
        for k, stage in enumerate(passes):
            if k:
                upscale_start = time.perf_counter()
                stage = _with_upscaled(stage, passes[k - 1], latents, result.notes)
                result.timings["upscale"] = time.perf_counter() - upscale_start
            outcome = yield from _run_pass(stage, done, total, elapsed, result)
            if outcome is None:
                result.cancelled = True
                result.timings["total"] = time.perf_counter() - started
                return result
            latents, prepared, elapsed = outcome
            done += stage.runs
            result.passes.append(_describe(stage))
        last = passes[-1].job
        decode_start = time.perf_counter()
        images = Decoder(last.loaded.pipe).images(latents, last.generators, result.notes)
        result.images = prepared.finish(last.loaded.pipe.image_processor, images)
        result.timings["decode"] = time.perf_counter() - decode_start
    result.timings["denoise"] = elapsed
    result.seeds = recipe.image_seeds()
    result.timings["total"] = time.perf_counter() - started
    return result


def _run_pass(stage: Pass, done: int, total: int, elapsed: float, result: GenerationResult):
    """Encode, prepare and denoise one pass; progress continues the job's count. Returns
    (latents, prepared, seconds of denoising so far), or None when it was cancelled."""
    job = stage.job
    loaded, recipe = job.loaded, job.recipe
    pipe, info = loaded.pipe, loaded.info
    guided = recipe.guidance.scale != 1.0
    conditioning = family_for(info).encode(pipe, recipe.prompt, job.device, job.batch, guided, (job.width, job.height))
    if not done:
        result.warnings.extend(conditioning.warnings)
    prepared = latent_preparation(job).prepare(job, stage.scheduler, stage.timesteps)
    previewer = Previewer(job.options.preview, factors=info.preview_factors, decode=Decoder(pipe).decode,
                          every=job.options.preview_every, max_fps=job.max_fps)
    ctx = DenoiseContext(stage.scheduler, prepared.timesteps, conditioning, runner_for(loaded),
                         hooks_for(job, previewer, guided, prepared),
                         prediction_type=stage.scheduler.config.get("prediction_type", "epsilon"),
                         step_kwargs=_step_kwargs(job, stage.scheduler), notes=result.notes)
    steps = denoise(ctx, prepared.latents)
    pass_seconds = 0.0
    while True:
        try:
            update = next(steps)
        except StopIteration as stop:
            latents = stop.value
            break
        pass_seconds = update.elapsed
        seconds = elapsed + update.elapsed
        step = update.step + done
        yield dataclasses.replace(update, step=step, total=total, elapsed=seconds,
                                  its_per_sec=step / seconds if seconds > 0 and step else 0.0)
    if ctx.warm_up_seconds:
        result.timings["warm-up"] = result.timings.get("warm-up", 0.0) + ctx.warm_up_seconds
    if latents is None or job.cancel.is_set():
        return None
    return latents, prepared, elapsed + pass_seconds


def _hires_job(first: Job, model: LoadedModel, init_latents, init_pixels) -> Job:
    """The second pass: the hires size and steps, the second model, the hires strength."""
    hires, recipe = first.recipe.hires, first.recipe
    width, height = hires.size_for(first.width, first.height, first.loaded.info.latent_factor)
    second = recipe.with_(width=width, height=height, steps=hires.schedule_steps(recipe.sampling.steps),
                          model_id=model.info.id, source=None, hires=None)
    return Job(model, second, first.options, first.cancel, first.max_fps, first.extra_hooks, init_latents=init_latents,
               init_pixels=init_pixels, strength=hires.strength, resize_seed=False)


def _same_latent_space(a: LoadedModel, b: LoadedModel) -> bool:
    va, vb = a.pipe.vae.config, b.pipe.vae.config
    return a is b or (a.info.family == b.info.family and va.latent_channels == vb.latent_channels
                      and va.scaling_factor == vb.scaling_factor)


def _with_upscaled(stage: Pass, previous: Pass, latents: torch.Tensor, notes: list[str]) -> Pass:
    """The planned hires pass, given the first pass's latents upscaled (latent upscaler, same
    latent space) or its picture decoded, upscaled with Lanczos and handed over as pixels."""
    first, second = previous.job, stage.job
    if first.recipe.hires.upscaler == "latent" and _same_latent_space(first.loaded, second.loaded):
        factor = second.loaded.info.latent_factor
        upscaled = torch.nn.functional.interpolate(latents, size=(second.height // factor, second.width // factor),
                                                   mode="bilinear")
        job = dataclasses.replace(second, init_latents=upscaled)
    else:
        if first.recipe.hires.upscaler == "latent":
            notes.append(f"{second.loaded.info.name} works in another latent space than {first.loaded.info.name}, so "
                         "the first picture was upscaled in pixels (Lanczos) for the second pass")
        pictures = Decoder(first.loaded.pipe).images(latents, first.generators, notes)
        resized = [p.resize((second.width, second.height), Image.Resampling.LANCZOS) for p in pictures]
        job = dataclasses.replace(second, init_pixels=second.loaded.pipe.image_processor.preprocess(resized))
    return dataclasses.replace(stage, job=job)


def _describe(stage: Pass) -> dict[str, Any]:
    job = stage.job
    return {"model": job.loaded.info.id, "width": job.width, "height": job.height, "steps": job.steps,
            "steps_run": stage.runs, "strength": job.strength}


def hooks_for(job: Job, previewer: Previewer, guided: bool, prepared: Prepared | None = None) -> list[Hook]:
    """The hooks this job needs, in the order they run."""
    hooks: list[Hook] = [CancelHook(job.cancel)]
    guidance = job.recipe.guidance
    if guided:
        hooks.append(ClassifierFreeGuidance(guidance.scale))
    if prepared is not None and prepared.condition is not None:
        hooks.append(InpaintConditioning(*prepared.condition))
    classifier = job.loaded.classifier
    if guidance.classifier_on and classifier is not None:
        hooks.append(ClassifierGuidance(classifier, classifier.target_indices(guidance.classifier_target), guidance.classifier_scale))
    if prepared is not None and prepared.known is not None:
        known = prepared.known
        hooks.append(InpaintBlend(known.image_latents, known.noise, known.mask))
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
        delta = sampling.noise_seed_delta
        kwargs["generator"] = ([torch.Generator("cpu").manual_seed(seed + delta) for seed in job.seeds]
                               if delta else job.generators)
    return kwargs
