"""Our scheduler names (AUTOMATIC1111's) as ComfyUI ``sampler_name`` + ``scheduler`` pairs, and the
sampling choices ComfyUI's KSampler cannot express, each with the reason a user is told.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.core.recipe import Sampling
from desktop_app.core.schedulers import SCHEDULERS


@dataclass(frozen=True)
class SamplerChoice:
    sampler_name: str
    scheduler: str


COMFY_SAMPLERS: dict[str, SamplerChoice] = {
    # ComfyUI's "ddpm" is ancestral sampling with the posterior variance β̃ₜ (our "fixed_small")
    "DDPM": SamplerChoice("ddpm", "normal"),
    # ComfyUI's "ddim" is deterministic (η = 0) on the DDIM timestep grid
    "DDIM": SamplerChoice("ddim", "ddim_uniform"),
    "LMS": SamplerChoice("lms", "normal"),
    "Euler": SamplerChoice("euler", "normal"),
    "Euler a": SamplerChoice("euler_ancestral", "normal"),
    "Heun": SamplerChoice("heun", "normal"),
    "DPM2": SamplerChoice("dpm_2", "normal"),
    "DPM2 a": SamplerChoice("dpm_2_ancestral", "normal"),
    "DPM++ 2M": SamplerChoice("dpmpp_2m", "normal"),
    "DPM++ 2M Karras": SamplerChoice("dpmpp_2m", "karras"),
    "DPM++ 2M SDE": SamplerChoice("dpmpp_2m_sde", "normal"),
    "DPM++ 2M SDE Karras": SamplerChoice("dpmpp_2m_sde", "karras"),
    "DPM++ SDE": SamplerChoice("dpmpp_sde", "normal"),
    "UniPC": SamplerChoice("uni_pc", "normal"),
    "DEIS": SamplerChoice("deis", "normal"),
    "LCM": SamplerChoice("lcm", "sgm_uniform"),
}

NOT_ON_COMFYUI: dict[str, str] = {
    "PNDM": "ComfyUI has no PNDM/PLMS sampler (its ipndm is a different method); choose another scheduler",
}


def sampler_problems(sampling: Sampling, server_samplers: set[str], server_schedulers: set[str],
                     server: str) -> list[str]:
    """Why ``sampling`` cannot run on ``server`` as asked (empty: it can)."""
    name = sampling.scheduler
    if name in NOT_ON_COMFYUI:
        return [f"{name}: {NOT_ON_COMFYUI[name]}"]
    choice = COMFY_SAMPLERS.get(name)
    if choice is None:
        return [f"{name}: there is no ComfyUI sampler for this scheduler; choose another"]
    found = []
    if choice.sampler_name not in server_samplers:
        found.append(f"{name}: {server} has no sampler {choice.sampler_name!r}")
    if choice.scheduler not in server_schedulers:
        found.append(f"{name}: {server} has no schedule {choice.scheduler!r}")
    if name == "DDIM" and sampling.eta != 0:
        found.append(f"DDIM η = {sampling.eta:g}: ComfyUI's DDIM is deterministic (η = 0 only); "
                     "set η to 0 or use Euler a for a noisy sampler")
    if name == "DDPM" and sampling.ddpm_variance != "fixed_small":
        found.append("DDPM with σ² = βₜ: ComfyUI's DDPM sampler uses β̃ₜ only; choose fixed_small")
    spec = SCHEDULERS.get(name)
    if sampling.noise_seed_delta and spec is not None and spec.stochastic:
        found.append(f"{name} with a noise seed delta (ENSD): ComfyUI draws step noise from the seed alone; "
                     "set ENSD to 0")
    return found
