"""The latent-preparation stage: where the reverse process starts, and over which timesteps.

One class per way a picture starts, picked by ``latent_preparation(job)``; the loop and the other
stages are the same for all of them:

- ``TextToImage``: x_T ~ N(0, I), every timestep of the schedule.
- ``ImageToImage``: the forward process in closed form, x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, with x₀ the
  encoded picture and t where the strength cuts the schedule; only the steps after t run. The
  second pass of a hires fix is one too, from upscaled latents or pixels.
- ``Inpaint``: image to image where the mask says so. A 9-channel inpainting UNet sees the mask
  and the masked picture's latents beside x_t (``hooks.InpaintConditioning``); any other model
  gets the known region blended back after every step (``hooks.InpaintBlend``).

Each returns a ``Prepared``: the starting latents, the timesteps to run, and what the hooks and
the paste-back need. Every random draw comes from the job's per-image CPU generators in
diffusers' order (the VAE's latent sample, then the noise, then the masked picture's sample), so
the same settings give the same pixels as diffusers' pipelines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from desktop_app.backend.local.decode import Decoder
from desktop_app.backend.local.sources import SourcePictures
from desktop_app.core.image_parts import steps_left


@dataclass
class KnownRegion:
    """What the 4-channel inpaint blend puts back: the picture's latents, the noise that takes
    them to each step's level, and the latent mask (1: repaint)."""

    image_latents: torch.Tensor
    noise: torch.Tensor
    mask: torch.Tensor


@dataclass
class Prepared:
    latents: torch.Tensor
    timesteps: torch.Tensor
    known: KnownRegion | None = None  # 4-channel inpainting: blended back after each step
    condition: tuple[torch.Tensor, torch.Tensor] | None = None  # 9-channel: (mask, masked picture's latents)
    pictures: SourcePictures | None = None  # what the result is pasted back onto

    def finish(self, processor, images: list) -> list:
        """The decoded pictures, pasted back into the source where it was inpainted."""
        return self.pictures.paste_back(processor, images) if self.pictures is not None else images


def cut_schedule(scheduler, timesteps: torch.Tensor, steps: int, strength: float) -> torch.Tensor:
    """The timesteps left after the strength's cut: the last ``int(steps · strength)`` steps (times
    the scheduler's order), with the scheduler told where its schedule now begins."""
    if strength >= 1.0:
        return timesteps
    start = (steps - steps_left(steps, strength)) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return timesteps[start:]


def slerp(weight: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of two noises, one per image: keeps a Gaussian's norm where a
    straight blend would shrink it (nearly parallel noises fall back to the straight blend)."""
    flat_low, flat_high = low.flatten(1).double(), high.flatten(1).double()
    cos = (flat_low / flat_low.norm(dim=1, keepdim=True) * flat_high / flat_high.norm(dim=1, keepdim=True)).sum(1)
    omega = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(omega)
    near = sin.abs() < 1e-6
    a = torch.where(near, 1 - weight, torch.sin((1 - weight) * omega) / torch.where(near, 1.0, sin))
    b = torch.where(near, weight, torch.sin(weight * omega) / torch.where(near, 1.0, sin))
    mixed = a[:, None] * flat_low + b[:, None] * flat_high
    return mixed.view_as(low).to(low.dtype)


def initial_noise(job, shape: tuple[int, ...]) -> torch.Tensor:
    """ε for each image, from its generator; with a variation, slerped towards the variation seed's
    noise and/or drawn at another size and centred (AUTOMATIC1111's variation seed and "Seed
    resize from"). Without one this is exactly diffusers' draw."""
    from diffusers.utils.torch_utils import randn_tensor

    variation = job.variation
    if variation is None or (variation.strength <= 0 and not (variation.resizes and job.resize_seed)):
        return randn_tensor(shape, generator=job.generators, device=job.device, dtype=job.dtype)
    batch, channels, height, width = shape
    factor = job.loaded.info.latent_factor
    resized = variation.resizes and job.resize_seed
    drawn = (batch, channels, variation.resize_from_height // factor, variation.resize_from_width // factor) if resized else shape
    noise = randn_tensor(drawn, generator=job.generators, device=job.device, dtype=job.dtype)
    if variation.strength > 0:
        others = [torch.Generator("cpu").manual_seed(variation.seed + k) for k in range(batch)]
        noise = slerp(variation.strength, noise, randn_tensor(drawn, generator=others, device=job.device, dtype=job.dtype))
    if not resized:
        return noise
    canvas = randn_tensor(shape, generator=[torch.Generator("cpu").manual_seed(s) for s in job.seeds],
                          device=job.device, dtype=job.dtype)
    (top, source_top, rows), (left, source_left, cols) = _centred(height, drawn[2]), _centred(width, drawn[3])
    canvas[:, :, top:top + rows, left:left + cols] = noise[:, :, source_top:source_top + rows, source_left:source_left + cols]
    return canvas


def _centred(target: int, drawn: int) -> tuple[int, int, int]:
    """(start in the target, start in the drawn noise, length) of the drawn noise centred in the target."""
    offset = (target - drawn) // 2
    return (offset, 0, drawn) if offset >= 0 else (0, -offset, target)


class TextToImage:
    """x_T ~ N(0, I) per image (from its own CPU generator, so a seed gives the same picture on
    every device), scaled by the scheduler's initial σ; every timestep of the schedule runs."""

    def prepare(self, job, scheduler, timesteps: torch.Tensor) -> Prepared:
        info = job.loaded.info
        shape = (job.batch, job.loaded.pipe.unet.config.in_channels, job.height // info.latent_factor,
                 job.width // info.latent_factor)
        return Prepared(initial_noise(job, shape) * scheduler.init_noise_sigma, timesteps)


class ImageToImage:
    """The picture encoded (each batch image sampling its latent from its own generator), noised
    to the first timestep left after the strength's cut. The hires pass hands in latents (latent
    upscaler) or pixels (Lanczos) instead of a file."""

    def prepare(self, job, scheduler, timesteps: torch.Tensor) -> Prepared:
        timesteps = cut_schedule(scheduler, timesteps, job.steps, job.strength)
        init = job.init_latents
        if init is None:
            pixels = job.init_pixels
            if pixels is None:  # concatenated, not repeated: the encoder sees diffusers' memory layout (and rounding)
                pixels = torch.cat([job.loaded.pipe.image_processor.preprocess(job.pictures.image)] * job.batch)
            init = Decoder(job.loaded.pipe).encode(pixels, job.generators, job.device)
        init = init.to(job.device, job.dtype)
        noise = initial_noise(job, tuple(init.shape))
        latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(job.batch))
        return Prepared(latents, timesteps)


class Inpaint:
    """Image to image inside the mask, as diffusers' ``StableDiffusionInpaintPipeline``.

    Strength 1 starts the masked area from pure noise. A 9-channel UNet gets the mask and the
    masked picture's latents; a 4-channel one the known region blended back each step. Masked
    content "noise" replaces the picture's latents under the mask by fresh noise before noising.
    """

    def prepare(self, job, scheduler, timesteps: torch.Tensor) -> Prepared:
        pipe, info = job.loaded.pipe, job.loaded.info
        decoder = Decoder(pipe)
        timesteps = cut_schedule(scheduler, timesteps, job.steps, job.strength)
        full = job.strength >= 1.0
        nine = pipe.unet.config.in_channels == 9
        first = job.generators[:1]  # diffusers encodes the one picture with the first generator
        height, width = job.height // info.latent_factor, job.width // info.latent_factor
        init = pipe.image_processor.preprocess(job.pictures.image, height=job.height, width=job.width).to(torch.float32)
        image_latents = None
        if not nine or not full:
            image_latents = decoder.encode(init, first, job.device).to(job.dtype).repeat(job.batch, 1, 1, 1)
        condition = mask_processor(pipe).preprocess(job.pictures.mask, height=job.height, width=job.width)
        mask = torch.nn.functional.interpolate(condition, size=(height, width)).to(job.device, job.dtype)
        mask = mask.repeat(job.batch, 1, 1, 1)
        shape = (job.batch, pipe.vae.config.latent_channels, height, width)
        noise = initial_noise(job, shape)
        if full:
            latents = noise * scheduler.init_noise_sigma
        else:
            start = image_latents
            if job.masked_content == "noise":  # an independent x₀ under the mask: x_t keeps unit variance
                start = (1 - mask) * image_latents + mask * initial_noise(job, shape)
            latents = scheduler.add_noise(start, noise, timesteps[:1].repeat(job.batch))
        if nine:
            masked_picture = init * (condition < 0.5)
            masked = decoder.encode(masked_picture, first, job.device).to(job.dtype).repeat(job.batch, 1, 1, 1)
            return Prepared(latents, timesteps, condition=(mask, masked), pictures=job.pictures)
        _skip_latent_sample(pipe, first[0], (1, pipe.vae.config.latent_channels, height, width), job.device)
        return Prepared(latents, timesteps, known=KnownRegion(image_latents, noise, mask), pictures=job.pictures)


def _skip_latent_sample(pipe, generator: torch.Generator, shape: tuple[int, ...], device) -> None:
    """Advance ``generator`` as diffusers' encode of the masked picture would (one latent sample),
    without the encode a 4-channel model does not use, so later draws (step noise) stay the same."""
    from diffusers.utils.torch_utils import randn_tensor

    randn_tensor(shape, generator=generator, device=device, dtype=pipe.vae.dtype)


def mask_processor(pipe):
    """The pipeline's mask processor, or one made as diffusers' inpaint pipeline makes it."""
    return getattr(pipe, "mask_processor", None) or _mask_processor(pipe.vae_scale_factor)


@functools.lru_cache(maxsize=4)
def _mask_processor(vae_scale_factor: int):
    from diffusers.image_processor import VaeImageProcessor

    return VaeImageProcessor(vae_scale_factor=vae_scale_factor, do_normalize=False, do_binarize=True,
                             do_convert_grayscale=True)


def latent_preparation(job):
    """The preparation for ``job``: how its picture starts."""
    if job.init_latents is not None or job.init_pixels is not None:
        return ImageToImage()
    if job.pictures is None:
        return TextToImage()
    if job.pictures.mask is not None:
        return Inpaint()
    return TextToImage() if job.strength >= 1.0 else ImageToImage()
