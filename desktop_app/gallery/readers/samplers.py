"""Other tools' sampler and noise-schedule names, mapped to ours (``desktop_app.core.schedulers``).

ComfyUI (and Fooocus and SwarmUI, which use its names) give a sampler and a schedule apart
(``dpmpp_2m`` + ``karras``); old ComfyUI graphs wrote ``sample_dpmpp_2m``; ``_gpu`` variants are
the same sampler drawing its noise on the GPU. NovelAI writes k-diffusion names (``k_euler_ancestral``,
``k_dpmpp_2m``) with a ``noise_schedule``; InvokeAI 2 wrote ``k_lms``, ``k_euler_a``, ``k_dpmpp_2``
(its DPMSolverMultistep) and InvokeAI 3+ writes diffusers-like names with ``_k`` for Karras.
A sampler we do not have gives no scheduler (the recipe keeps its default) and a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop_app.core.schedulers import SCHEDULERS
from desktop_app.gallery.readers.common import NO_CONTROL

COMFY_SAMPLERS = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_sde": "DPM++ SDE",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "uni_pc_bh2": "UniPC",
    "lcm": "LCM",
    "ddpm": "DDPM",
    "deis": "DEIS",
    "plms": "PNDM",
}
NOVELAI_SAMPLERS = {
    "k_euler": "Euler",
    "k_euler_ancestral": "Euler a",
    "k_lms": "LMS",
    "k_heun": "Heun",
    "k_dpm_2": "DPM2",
    "k_dpm_2_ancestral": "DPM2 a",
    "k_dpmpp_2m": "DPM++ 2M",
    "k_dpmpp_sde": "DPM++ SDE",
    "k_dpmpp_2m_sde": "DPM++ 2M SDE",
    "ddim": "DDIM",
    "ddim_v3": "DDIM",
    "plms": "PNDM",
}
INVOKE_LEGACY_SAMPLERS = {  # InvokeAI 1.x/2.x (Dream text, sd-metadata)
    "ddim": "DDIM",
    "plms": "PNDM",
    "k_lms": "LMS",
    "k_euler": "Euler",
    "k_euler_a": "Euler a",
    "k_heun": "Heun",
    "k_dpm_2": "DPM2",
    "k_dpm_2_a": "DPM2 a",
    "k_dpmpp_2": "DPM++ 2M",
    "dpmpp_2": "DPM++ 2M",
}
INVOKE_SCHEDULERS = {  # InvokeAI 3+ (invokeai_metadata); a "_k" suffix means Karras
    "ddim": "DDIM",
    "ddpm": "DDPM",
    "deis": "DEIS",
    "lms": "LMS",
    "pndm": "PNDM",
    "heun": "Heun",
    "euler": "Euler",
    "euler_a": "Euler a",
    "kdpm_2": "DPM2",
    "kdpm_2_a": "DPM2 a",
    "dpmpp_2s": "DPM++ SDE",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "unipc": "UniPC",
    "lcm": "LCM",
}
_DEFAULT_SCHEDULES = ("", "normal", "native", "default", "automatic")


@dataclass(frozen=True)
class SamplerMatch:
    name: str | None  # ours; None: no such sampler here
    notes: dict[str, str] = field(default_factory=dict)  # for ImageMetadata.unknown


def _with_schedule(base: str | None, raw: str, schedule: str, tool: str) -> SamplerMatch:
    notes: dict[str, str] = {}
    if base is None:
        notes["sampler"] = (
            f"{raw}: {tool}'s sampler has no equivalent here (the default scheduler stays); {NO_CONTROL}"
        )
        return SamplerMatch(None, notes)
    schedule = (schedule or "").strip()
    if schedule.lower() == "karras":
        if f"{base} Karras" in SCHEDULERS:
            return SamplerMatch(f"{base} Karras", notes)
        notes["schedule"] = (
            f"karras: {base} has no Karras variant here, so its own noise levels are used; {NO_CONTROL}"
        )
    elif schedule.lower() not in _DEFAULT_SCHEDULES:
        notes["schedule"] = (
            f"{schedule}: {tool}'s noise schedule {schedule!r} is not available, "
            f"so {base} uses the model's own; {NO_CONTROL}"
        )
    return SamplerMatch(base, notes)


def from_comfy(sampler: str, schedule: str = "normal", tool: str = "ComfyUI") -> SamplerMatch:
    """ComfyUI's ``sampler_name`` + ``scheduler`` (also Fooocus's and SwarmUI's)."""
    raw = str(sampler)
    name = raw.strip().lower()
    name = name.removeprefix("sample_")  # ComfyUI before mid-2023
    on_gpu = name.endswith("_gpu")
    base = COMFY_SAMPLERS.get(name.removesuffix("_gpu"))
    match = _with_schedule(base, raw, schedule, tool)
    if on_gpu and base is not None:
        match.notes["sampler"] = (
            f"{raw}: read as {base}; the _gpu variant draws its noise on the GPU, "
            f"so the same seed gives other noise here"
        )
    return match


def from_novelai(sampler: str, noise_schedule: str = "native") -> SamplerMatch:
    raw = str(sampler)
    return _with_schedule(NOVELAI_SAMPLERS.get(raw.strip().lower()), raw, noise_schedule, "NovelAI")


def from_invoke_legacy(sampler: str) -> SamplerMatch:
    """InvokeAI 1.x/2.x names (``k_lms``); a ``_karras`` suffix is read too."""
    raw = str(sampler)
    name = raw.strip().lower()
    karras = name.endswith("_karras")
    base = INVOKE_LEGACY_SAMPLERS.get(name.removesuffix("_karras"))
    return _with_schedule(base, raw, "karras" if karras else "", "InvokeAI")


def from_invoke(scheduler: str) -> SamplerMatch:
    """InvokeAI 3+ names (``dpmpp_2m_k``)."""
    raw = str(scheduler)
    name = raw.strip().lower()
    karras = name.endswith("_k")
    base = INVOKE_SCHEDULERS.get(name.removesuffix("_k") if karras else name)
    return _with_schedule(base, raw, "karras" if karras else "", "InvokeAI")
