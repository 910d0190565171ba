"""The latent-preparation stage: where the reverse process starts, and over which timesteps.

Text to image starts from pure noise at the start of the schedule. Image to image and
inpainting (next) start from a noised picture part-way down the schedule: each is one more
preparation class chosen by ``latent_preparation``, and neither the loop nor the other stages
change for it.
"""

from __future__ import annotations

import torch


class TextToImage:
    """x_T ~ N(0, I) per image (from its own CPU generator, so a seed gives the same picture on
    every device), scaled by the scheduler's initial σ; every timestep of the schedule runs."""

    def prepare(self, job, scheduler, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from diffusers.utils.torch_utils import randn_tensor

        info = job.loaded.info
        shape = (job.batch, job.loaded.pipe.unet.config.in_channels, job.height // info.latent_factor,
                 job.width // info.latent_factor)
        latents = randn_tensor(shape, generator=job.generators, device=job.device, dtype=job.dtype)
        return latents * scheduler.init_noise_sigma, timesteps


def latent_preparation(job) -> TextToImage:
    return TextToImage()
