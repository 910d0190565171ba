"""The VAE both ways: latents to pixels (one way for previews and results alike), and pixels to
latents for image to image.

The UNet works on latents multiplied by the VAE's scaling factor (and, for VAEs that declare
them, normalised by per-channel ``latents_mean``/``latents_std``); the decoder undoes exactly that,
upcasts a half-precision VAE that asks for it, and decodes again in fp32 when fp16 overflowed into
NaNs (the "black image" problem). ``encode`` does the reverse as diffusers' img2img and inpaint
pipelines do: one image at a time, each sampling its latent from its own generator.
"""

from __future__ import annotations

import torch
from PIL import Image


class Decoder:
    def __init__(self, pipe):
        self.pipe = pipe
        self.vae = pipe.vae

    def _latent_stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The VAE's per-channel latent mean and std (SDXL-style configs), shaped and placed like ``like``."""
        config = self.vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is None or std is None:
            return None
        return (torch.tensor(mean).view(1, -1, 1, 1).to(like.device, like.dtype),
                torch.tensor(std).view(1, -1, 1, 1).to(like.device, like.dtype))

    def to_vae_space(self, latents: torch.Tensor) -> torch.Tensor:
        scale, stats = self.vae.config.scaling_factor, self._latent_stats(latents)
        if stats is not None:
            mean, std = stats
            return latents * std / scale + mean
        return latents / scale

    def encode(self, pixels: torch.Tensor, generators: list[torch.Generator], device: torch.device) -> torch.Tensor:
        """Images (B, 3, H, W) in [-1, 1] → latents as the UNet sees them; image k samples from generators[k]."""
        from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

        vae = self.vae
        original = vae.dtype
        upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
        if upcast:
            vae.to(torch.float32)
        try:
            pixels = pixels.to(device, vae.dtype)
            latents = torch.cat([retrieve_latents(vae.encode(pixels[k:k + 1]), generator=generators[k])
                                 for k in range(pixels.shape[0])])
        finally:
            if vae.dtype != original:
                vae.to(original)
        return self.to_unet_space(latents.to(original))

    def to_unet_space(self, latents: torch.Tensor) -> torch.Tensor:
        scale, stats = self.vae.config.scaling_factor, self._latent_stats(latents)
        if stats is not None:
            mean, std = stats
            return (latents - mean) * scale / std
        return scale * latents

    def decode(self, latents: torch.Tensor, generators=None, notes: list[str] | None = None) -> torch.Tensor:
        """Latents (B, C, h, w) → images (B, 3, H, W) in [-1, 1]; a note goes to ``notes`` when fp16 had to be redone."""
        vae = self.vae
        original = vae.dtype
        scaled = self.to_vae_space(latents)
        upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
        if upcast:
            vae.to(torch.float32)
        try:
            image = vae.decode(scaled.to(vae.dtype), return_dict=False, generator=generators)[0]
            if vae.dtype != torch.float32 and not torch.isfinite(image).all():
                vae.to(torch.float32)
                image = vae.decode(scaled.float(), return_dict=False, generator=generators)[0]
                if notes is not None:
                    notes.append("the fp16 decode produced NaNs, so the image was decoded again in fp32")
        finally:
            if vae.dtype != original:
                vae.to(original)
        return image

    def images(self, latents: torch.Tensor, generators=None, notes: list[str] | None = None) -> list[Image.Image]:
        image = self.decode(latents, generators, notes)
        return self.pipe.image_processor.postprocess(image, output_type="pil", do_denormalize=[True] * image.shape[0])
