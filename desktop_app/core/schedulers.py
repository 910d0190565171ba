"""Scheduler names users know from other tools, each mapped to a diffusers scheduler.

Only names and facts live here (torch-free, shared by every layer); the local backend builds the
diffusers scheduler from a spec (``desktop_app.backend.local.schedulers``), always from the
model's own scheduler config with only the options the name implies changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SchedulerSpec:
    name: str
    class_name: str
    options: dict[str, Any] = field(default_factory=dict)
    takes_eta: bool = False
    takes_variance: bool = False
    stochastic: bool = False
    a1111_sampler: str = ""  # AUTOMATIC1111's "Sampler" value
    a1111_schedule: str = "Automatic"  # AUTOMATIC1111's "Schedule type" value
    description: str = ""


_SPECS = [
    SchedulerSpec("DDPM", "DDPMScheduler", takes_variance=True, stochastic=True, a1111_sampler="DDPM",
                  description="Ancestral sampling of Ho et al.; σ² = βₜ or β̃ₜ. Needs many steps."),
    SchedulerSpec("DDIM", "DDIMScheduler", takes_eta=True, a1111_sampler="DDIM",
                  description="Song et al.; η = 0 is deterministic, η = 1 is as noisy as DDPM."),
    SchedulerSpec("PNDM", "PNDMScheduler", a1111_sampler="PLMS", description="Pseudo linear multistep."),
    SchedulerSpec("LMS", "LMSDiscreteScheduler", a1111_sampler="LMS", description="Linear multistep (k-diffusion)."),
    SchedulerSpec("Euler", "EulerDiscreteScheduler", a1111_sampler="Euler", description="First-order ODE solver."),
    SchedulerSpec("Euler a", "EulerAncestralDiscreteScheduler", stochastic=True, a1111_sampler="Euler a",
                  description="Euler with fresh noise each step; keeps changing with more steps."),
    SchedulerSpec("Heun", "HeunDiscreteScheduler", a1111_sampler="Heun", description="Second order: two model calls a step."),
    SchedulerSpec("DPM2", "KDPM2DiscreteScheduler", a1111_sampler="DPM2", description="Second-order DPM solver (k-diffusion)."),
    SchedulerSpec("DPM2 a", "KDPM2AncestralDiscreteScheduler", stochastic=True, a1111_sampler="DPM2 a",
                  description="Ancestral DPM2."),
    SchedulerSpec("DPM++ 2M", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False},
                  a1111_sampler="DPM++ 2M", description="Fast, good at 20–30 steps."),
    SchedulerSpec("DPM++ 2M Karras", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
                  a1111_sampler="DPM++ 2M", a1111_schedule="Karras", description="DPM++ 2M on Karras noise levels."),
    SchedulerSpec("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": False},
                  stochastic=True, a1111_sampler="DPM++ 2M SDE", description="Stochastic DPM++ 2M."),
    SchedulerSpec("DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler",
                  {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True}, stochastic=True,
                  a1111_sampler="DPM++ 2M SDE", a1111_schedule="Karras", description="Stochastic DPM++ 2M, Karras levels."),
    SchedulerSpec("DPM++ SDE", "DPMSolverSinglestepScheduler", {"algorithm_type": "dpmsolver++"},
                  a1111_sampler="DPM++ SDE", description="Single-step DPM-Solver++."),
    SchedulerSpec("UniPC", "UniPCMultistepScheduler", a1111_sampler="UniPC", description="Predictor-corrector; good at few steps."),
    SchedulerSpec("DEIS", "DEISMultistepScheduler", a1111_sampler="DEIS", description="Exponential integrator."),
    SchedulerSpec("LCM", "LCMScheduler", stochastic=True, a1111_sampler="LCM",
                  description="For latent consistency models (4–8 steps); other models give poor images."),
]

SCHEDULERS: dict[str, SchedulerSpec] = {spec.name: spec for spec in _SPECS}
_CLASS_CONFIG_KEYS_TO_DROP = ("_class_name", "_diffusers_version")


def scheduler_names() -> list[str]:
    return list(SCHEDULERS)


def get_spec(name: str) -> SchedulerSpec:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise KeyError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}") from None


def find_by_a1111(sampler: str, schedule: str = "") -> SchedulerSpec | None:
    """The spec for an AUTOMATIC1111 sampler name (old fused names like "DPM++ 2M Karras" too)."""
    if sampler in SCHEDULERS and not schedule:
        return SCHEDULERS[sampler]
    schedule = schedule or "Automatic"
    if sampler.endswith(" Karras"):
        sampler, schedule = sampler[: -len(" Karras")], "Karras"
    for spec in _SPECS:
        if spec.a1111_sampler == sampler and spec.a1111_schedule in (schedule, "Automatic"):
            if spec.a1111_schedule == schedule:
                return spec
    for spec in _SPECS:
        if spec.a1111_sampler == sampler:
            return spec
    return None


# Multistep solvers that keep several past model outputs: with more steps than half the training
# timesteps, linspace spacing rounds two steps onto one timestep and the solver divides by a zero
# step (NaN) or runs off its σ table.
_HALF_TIMESTEPS_AT_MOST = {"DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "DEISMultistepScheduler",
                           "LMSDiscreteScheduler", "DPMSolverSinglestepScheduler"}


def step_range(name: str, base_config: dict[str, Any]) -> tuple[int, int]:
    """The step counts ``name`` can run on a model with ``base_config``, inclusive.

    Measured against diffusers: "leading" spacing adds ``steps_offset`` to the last timestep, so a
    full chain is num_train_timesteps − steps_offset steps; PNDM's Runge–Kutta warm-up (unless the
    config skips it) needs 4 steps; LCM samples from its ``original_inference_steps`` grid.
    """
    spec = get_spec(name)
    train = int(base_config.get("num_train_timesteps", 1000))
    offset = int(base_config.get("steps_offset", 0)) if base_config.get("timestep_spacing", "leading") == "leading" else 0
    low, high = 1, train - offset
    if spec.class_name in _HALF_TIMESTEPS_AT_MOST:
        high = train // 2
    if spec.class_name == "PNDMScheduler" and not base_config.get("skip_prk_steps", False):
        low = 4
    if spec.class_name == "LCMScheduler":
        high = int(base_config.get("original_inference_steps", 50))
    return low, high
