"""The encode stage: what each model family feeds the UNet besides the latents.

A family is a small strategy object chosen from the model's description (never by probing the
pipeline's attributes). SD 1.x, SD 2.x and the built-in model condition the UNet on one text
encoder's hidden states; SDXL on two encoders' states plus a pooled embedding and the size
"time ids" (a refiner: an aesthetic score instead of the target size). Prompts are read in
AUTOMATIC1111's syntax (weights, BREAK, ``<lora:…>`` tags taken out) and encoded in 75-token chunks
(``prompt_encoding``), so nothing of a long prompt is dropped; for a plain prompt of at most 75 tokens
the result is bit-identical to the diffusers pipeline's own ``encode_prompt``, so the same settings
give the same pixels.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import torch

from desktop_app.backend.local.prompt_encoding import encode_sd, encode_sdxl
from desktop_app.core.models import ModelInfo
from desktop_app.core.recipe import Prompt

# What diffusers' SDXL img2img pipeline tells a refiner (a UNet conditioned on an aesthetic score).
AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE = 6.0, 2.5


@dataclass
class Conditioning:
    """The prompt's (and, for guidance, the negative prompt's) inputs to the UNet, per image."""

    positive: torch.Tensor  # (batch, tokens, width)
    negative: torch.Tensor | None = None
    added_positive: dict[str, torch.Tensor] | None = None  # SDXL: text_embeds, time_ids
    added_negative: dict[str, torch.Tensor] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def dtype(self) -> torch.dtype:
        return self.positive.dtype

    def unet_kwargs(self, with_negative: bool) -> dict:
        """The UNet's conditioning inputs: the positive prompt's alone, or [negative; positive] stacked
        on the batch axis (the order diffusers uses for classifier-free guidance)."""
        if not with_negative:
            return {"encoder_hidden_states": self.positive, "added_cond_kwargs": self.added_positive}
        added = None
        if self.added_positive is not None:
            added = {k: torch.cat([self.added_negative[k], v]) for k, v in self.added_positive.items()}
        return {"encoder_hidden_states": torch.cat([self.negative, self.positive]), "added_cond_kwargs": added}


class StableDiffusionFamily:
    """SD 1.x, SD 2.x and the built-in model: one CLIP text encoder, cross-attention only."""

    def __init__(self, name: str):
        self.name = name

    def encode(self, pipe, prompt: Prompt, device: torch.device, batch: int, with_negative: bool,
               size: tuple[int, int]) -> Conditioning:
        positive, negative = encode_sd(pipe, prompt.text, prompt.negative or None, device, batch, with_negative)
        return Conditioning(positive, negative)


class SDXLFamily:
    """SDXL: two text encoders (hidden states concatenated), a pooled embedding and size time ids."""

    name = "SDXL"

    def encode(self, pipe, prompt: Prompt, device: torch.device, batch: int, with_negative: bool,
               size: tuple[int, int]) -> Conditioning:
        positive, negative, pooled, negative_pooled = encode_sdxl(pipe, prompt.text, prompt.negative or None, device,
                                                                  batch, with_negative)
        width, height = size
        projection = int(pooled.shape[-1])
        if "aesthetic_score" in inspect.signature(pipe._get_add_time_ids).parameters:  # img2img / refiner pipelines
            time_ids, negative_ids = pipe._get_add_time_ids(
                (height, width), (0, 0), (height, width), AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE, (height, width),
                (0, 0), (height, width), dtype=positive.dtype, text_encoder_projection_dim=projection)
        else:
            time_ids = negative_ids = pipe._get_add_time_ids((height, width), (0, 0), (height, width), dtype=positive.dtype,
                                                             text_encoder_projection_dim=projection)
        time_ids = time_ids.to(device).repeat(batch, 1)
        cond = Conditioning(positive, negative, {"text_embeds": pooled.to(device), "time_ids": time_ids})
        if with_negative:
            cond.added_negative = {"text_embeds": negative_pooled.to(device), "time_ids": negative_ids.to(device).repeat(batch, 1)}
        return cond


def family_for(info: ModelInfo):
    """The encode strategy for a model, from its description."""
    if "XL" in info.pipeline_class:
        return SDXLFamily()
    return StableDiffusionFamily(info.family)
