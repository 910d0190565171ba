"""The generation loop: a plain generator that yields step updates and returns the result.

It follows diffusers' StableDiffusionPipeline step for step (same prompt encoding, initial noise,
scheduler calls and decode), so the same settings give the same pixels, and adds what a desktop
app needs: previews of x̂₀, cancellation within one step, classifier guidance, and timings.
"""

from __future__ import annotations

import inspect
import math
import secrets
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from desktop_app.engine.loader import LoadedModel
from desktop_app.engine.models import ModelInfo
from desktop_app.engine.performance import describe_error, out_of_memory, wants_tiling
from desktop_app.engine.previews import Previewer
from desktop_app.engine.request import MAX_SEED, GenerationRequest, Problem
from desktop_app.engine.schedulers import build_scheduler, get_spec


class InvalidRequest(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class StepUpdate:
    step: int  # 1-based: steps done so far
    total: int
    elapsed: float  # seconds since the denoising loop started
    its_per_sec: float
    preview: np.ndarray | None = None  # (H, W, 3) uint8, a batch tiled into one grid
    phase: str = "denoise"  # "warm-up": fast mode is compiling the UNet before this step

    @property
    def eta_seconds(self) -> float:
        return (self.total - self.step) / self.its_per_sec if self.its_per_sec > 0 else float("nan")


@dataclass
class GenerationResult:
    request: GenerationRequest  # fully resolved: seed and size filled in
    model: ModelInfo
    images: list[Image.Image] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    cancelled: bool = False
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = ""
    precision: str = ""
    notes: list[str] = field(default_factory=list)  # what the engine changed, e.g. a fp32 re-decode


def pick_seed(batch_size: int) -> int:
    return secrets.randbelow(MAX_SEED - batch_size + 2)


def prompt_overflow(tokenizer, prompt: str) -> list[str]:
    """The words of ``prompt`` that the text encoder cannot see (beyond its token limit)."""
    if not prompt:
        return []
    ids = tokenizer(prompt, truncation=False, add_special_tokens=False).input_ids
    limit = tokenizer.model_max_length - 2  # begin and end tokens
    if len(ids) <= limit:
        return []
    return tokenizer.decode(ids[limit:]).split()


def _encode(pipe, request: GenerationRequest, device, do_cfg: bool, batch: int):
    """(prompt embeddings, added_cond_kwargs) for SD 1.x/2.x and SDXL, as their pipelines make them."""
    if hasattr(pipe, "text_encoder_2"):
        pe, npe, ppe, nppe = pipe.encode_prompt(
            prompt=request.prompt, device=device, num_images_per_prompt=batch,
            do_classifier_free_guidance=do_cfg, negative_prompt=request.negative_prompt or None,
        )
        width, height = request.width, request.height
        proj = int(ppe.shape[-1])
        time_ids = pipe._get_add_time_ids((height, width), (0, 0), (height, width), dtype=pe.dtype, text_encoder_projection_dim=proj)
        text_embeds = ppe
        if do_cfg:
            pe = torch.cat([npe, pe])
            text_embeds = torch.cat([nppe, ppe])
            time_ids = torch.cat([time_ids, time_ids])
        time_ids = time_ids.to(device).repeat(batch, 1)
        return pe, {"text_embeds": text_embeds.to(device), "time_ids": time_ids}
    pe, npe = pipe.encode_prompt(request.prompt, device, batch, do_cfg, request.negative_prompt or None)
    if do_cfg:
        pe = torch.cat([npe, pe])
    return pe, None


def alpha_bars(scheduler, times: list[float]) -> list[float]:
    """ᾱ at each of the sampler's (possibly fractional) training timesteps, by linear
    interpolation, as plain floats. Made once before the step loop: reading a timestep back from
    the GPU inside the loop would make the CPU wait for the GPU at every preview."""
    table = scheduler.alphas_cumprod.detach().to("cpu", torch.float64).numpy()
    return np.interp(np.asarray(times, dtype=np.float64), np.arange(len(table)), table).tolist()


def _x0_estimate(model_input, noise_pred, alpha_bar: float, prediction_type: str) -> torch.Tensor:
    a, s = math.sqrt(alpha_bar), math.sqrt(1 - alpha_bar)
    if prediction_type == "v_prediction":
        return a * model_input - s * noise_pred
    return (model_input - s * noise_pred) / a


def run_generation(
    loaded: LoadedModel, request: GenerationRequest, cancel: threading.Event | None = None, *, max_fps: float = 15.0,
    vae_tiling: str = "auto",
) -> Generator[StepUpdate, None, GenerationResult]:
    """Generate images for an already validated and resolved ``request`` (seed and size set)."""
    vae = loaded.pipe.vae
    tile = wants_tiling(vae_tiling, loaded.low_vram, (request.width, request.height), loaded.info.native_size)
    switched = tile and not getattr(vae, "use_tiling", False)
    if switched:
        vae.enable_tiling()
    try:
        result = yield from _run(loaded, request, cancel, max_fps)
    finally:
        if switched:
            vae.disable_tiling()
    latent_side = max(request.width, request.height) // loaded.info.latent_factor
    if tile and result.images and not loaded.low_vram and latent_side > getattr(vae, "tile_latent_min_size", latent_side):
        result.notes.append("the image was decoded in tiles to save memory (it is larger than twice the model's native area)")
    return result


def _run(
    loaded: LoadedModel, request: GenerationRequest, cancel: threading.Event | None, max_fps: float
) -> Generator[StepUpdate, None, GenerationResult]:
    cancel = cancel or threading.Event()
    pipe, info, placement = loaded.pipe, loaded.info, loaded.placement
    device = placement.device
    batch, spec = request.batch_size, get_spec(request.scheduler)
    result = GenerationResult(request, info, device=str(device), precision=placement.precision)
    result.notes.extend(loaded.pending_notes)
    loaded.pending_notes.clear()
    started = time.perf_counter()

    dropped = prompt_overflow(pipe.tokenizer, request.prompt)
    if dropped:
        result.warnings.append(f"the prompt is longer than the text encoder takes; these words were ignored: {' '.join(dropped)}")
    dropped = prompt_overflow(pipe.tokenizer, request.negative_prompt)
    if dropped:
        result.warnings.append(f"the negative prompt is too long; these words were ignored: {' '.join(dropped)}")

    scheduler = build_scheduler(request.scheduler, info.scheduler_config, ddpm_variance=request.ddpm_variance)
    generators = [torch.Generator("cpu").manual_seed(request.seed + k) for k in range(batch)]
    step_params = set(inspect.signature(scheduler.step).parameters)
    step_kwargs = {}
    if "eta" in step_params and spec.takes_eta:
        step_kwargs["eta"] = request.eta
    if "generator" in step_params:
        delta = request.noise_seed_delta
        step_kwargs["generator"] = (
            [torch.Generator("cpu").manual_seed(request.seed + k + delta) for k in range(batch)] if delta else generators
        )
    do_cfg = request.guidance_scale != 1.0
    classifier_target = None
    if request.classifier_target.strip() and loaded.classifier is not None and request.classifier_scale > 0:
        classifier_target = loaded.classifier.target_indices(request.classifier_target)
    prediction_type = scheduler.config.get("prediction_type", "epsilon")
    vae_scale = pipe.vae.config.scaling_factor

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return pipe.vae.decode(latents / vae_scale, return_dict=False)[0]

    previewer = Previewer(request.preview, factors=info.preview_factors, decode=decode, every=request.preview_every, max_fps=max_fps)

    with torch.no_grad():
        embeds, added_cond = _encode(pipe, request, device, do_cfg, batch)
        scheduler.set_timesteps(request.steps, device=device)
        timesteps = scheduler.timesteps
        step_times = timesteps.detach().cpu().tolist()  # read back once, before the loop
        step_alpha_bars = alpha_bars(scheduler, step_times)
        shape = (batch, pipe.unet.config.in_channels, request.height // info.latent_factor, request.width // info.latent_factor)
        from diffusers.utils.torch_utils import randn_tensor

        latents = randn_tensor(shape, generator=generators, device=device, dtype=embeds.dtype) * scheduler.init_noise_sigma
        result.timings["prepare"] = time.perf_counter() - started
        loop_start = time.perf_counter()
        total = len(timesteps)
        for i, t in enumerate(timesteps):
            if cancel.is_set():
                result.cancelled = True
                result.timings["total"] = time.perf_counter() - started
                return result
            model_input = torch.cat([latents] * 2) if do_cfg else latents
            model_input = scheduler.scale_model_input(model_input, t)
            unet_args = (model_input, t)
            unet_kwargs = {"encoder_hidden_states": embeds, "added_cond_kwargs": added_cond, "return_dict": False}
            fast = loaded.fast
            if fast is not None:
                warm_up = fast.needs_warm_up(tuple(model_input.shape) + (model_input.dtype,))
                if warm_up:  # the next call compiles: say so before it starts
                    elapsed = time.perf_counter() - loop_start
                    yield StepUpdate(i, total, elapsed, i / elapsed if elapsed > 0 and i else 0.0, None, "warm-up")
                compile_start = time.perf_counter()
                try:
                    noise_pred = fast(*unet_args, **unet_kwargs)[0]
                except Exception as exc:
                    if out_of_memory(exc):
                        raise
                    loaded.disable_fast()
                    result.notes.append(f"fast mode is off for this model: the compiled UNet failed ({describe_error(exc)}); "
                                        "the normal path made this image")
                    noise_pred = pipe.unet(*unet_args, **unet_kwargs)[0]
                if warm_up:
                    warm = time.perf_counter() - compile_start
                    result.timings["warm-up"] = result.timings.get("warm-up", 0.0) + warm
                    loop_start += warm  # speed and time left count denoising only
            else:
                noise_pred = pipe.unet(*unet_args, **unet_kwargs)[0]
            if do_cfg:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + request.guidance_scale * (cond - uncond)
            x_t = model_input[batch:] if do_cfg else model_input
            if classifier_target is not None:
                noise_pred = _classifier_guidance(
                    loaded.classifier, classifier_target, x_t, step_times[i], step_alpha_bars[i], noise_pred,
                    request.classifier_scale, prediction_type,
                )
            want_preview = previewer.due(i)
            output = scheduler.step(noise_pred, t, latents, **step_kwargs, return_dict=True)
            latents = output.prev_sample
            frame = previewer.poll()
            if want_preview:
                x0 = getattr(output, "pred_original_sample", None)
                if x0 is None or x0.shape != latents.shape:
                    x0 = _x0_estimate(x_t.float(), noise_pred.float(), step_alpha_bars[i], prediction_type)
                frame = previewer.submit(x0) if frame is None else frame
            elapsed = time.perf_counter() - loop_start
            yield StepUpdate(i + 1, total, elapsed, (i + 1) / elapsed if elapsed > 0 else 0.0, frame)
        if cancel.is_set():
            result.cancelled = True
            result.timings["total"] = time.perf_counter() - started
            return result
        result.timings["denoise"] = time.perf_counter() - loop_start
        decode_start = time.perf_counter()
        result.images = _decode_images(pipe, latents, generators, result)
        result.timings["decode"] = time.perf_counter() - decode_start
    result.seeds = [request.seed + k for k in range(batch)]
    result.timings["total"] = time.perf_counter() - started
    return result


def _classifier_guidance(classifier, target, x_t, t: float, alpha_bar: float, noise_pred, scale, prediction_type="epsilon"):
    """ε̂ = ε − s·√(1−ᾱ_t)·∇ₓ log p_φ(c | x_t).

    A v-predicting model's output is v = (ε − √(1−ᾱ)·x_t)/√ᾱ for a fixed x_t, so the same
    shift of ε moves v by that shift divided by √ᾱ.
    """
    with torch.enable_grad():
        x = x_t.detach().float().requires_grad_(True)
        timestep = torch.full((x.shape[0],), t, device=x.device)
        log_p = classifier.log_prob(x, timestep, target).sum()
        (grad,) = torch.autograd.grad(log_p, x)
    shift = scale * math.sqrt(1 - alpha_bar) * grad
    if prediction_type == "v_prediction":
        shift = shift / math.sqrt(alpha_bar)
    return noise_pred - shift.to(noise_pred.dtype)


def _decode_images(pipe, latents: torch.Tensor, generators, result: GenerationResult) -> list[Image.Image]:
    vae = pipe.vae
    config = vae.config
    upcast = vae.dtype == torch.float16 and getattr(config, "force_upcast", False)
    if getattr(config, "latents_mean", None) is not None and getattr(config, "latents_std", None) is not None:
        mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1).to(latents.device, latents.dtype)
        std = torch.tensor(config.latents_std).view(1, -1, 1, 1).to(latents.device, latents.dtype)
        scaled = latents * std / config.scaling_factor + mean
    else:
        scaled = latents / config.scaling_factor
    if upcast:
        vae.to(torch.float32)
    image = vae.decode(scaled.to(vae.dtype), return_dict=False, generator=generators)[0]
    if vae.dtype != torch.float32 and not torch.isfinite(image).all():
        # fp16 VAEs can overflow into NaNs (the "black image" problem): decode again in fp32.
        vae.to(torch.float32)
        image = vae.decode(scaled.float(), return_dict=False, generator=generators)[0]
        vae.to(latents.dtype)
        result.notes.append("the fp16 decode produced NaNs, so the image was decoded again in fp32")
    if upcast:
        vae.to(latents.dtype)
    return pipe.image_processor.postprocess(image, output_type="pil", do_denormalize=[True] * image.shape[0])
