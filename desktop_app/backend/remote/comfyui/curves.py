"""The noise schedule a ComfyUI server samples on, for the plot: SD's training schedule (every
SD 1.x/2.x/XL checkpoint uses it) and the timesteps ComfyUI's schedules visit. An approximation of
ComfyUI's own schedule code, close enough to draw; nothing runs on the server for it.
"""

from __future__ import annotations

import numpy as np

from desktop_app.backend.remote.comfyui.samplers import COMFY_SAMPLERS
from desktop_app.core.events import Curves

TRAIN_STEPS = 1000


def sd_schedule() -> tuple[np.ndarray, np.ndarray]:
    betas = np.linspace(0.00085**0.5, 0.012**0.5, TRAIN_STEPS, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas), betas


def visited_timesteps(schedule: str, steps: int, alphas_cumprod: np.ndarray) -> np.ndarray:
    sigmas = np.sqrt((1 - alphas_cumprod) / alphas_cumprod)
    if schedule == "karras":
        rho = 7.0
        ramp = np.linspace(0, 1, steps)
        high, low = sigmas[-1] ** (1 / rho), sigmas[0] ** (1 / rho)
        wanted = (high + ramp * (low - high)) ** rho
        return np.array([int(np.abs(sigmas - s).argmin()) for s in wanted])
    if schedule == "ddim_uniform":
        stride = max(TRAIN_STEPS // steps, 1)
        return np.arange(1, TRAIN_STEPS, stride)[:steps][::-1].copy()
    if schedule == "sgm_uniform":
        return np.round(np.linspace(TRAIN_STEPS - 1, 0, steps + 1)[:-1]).astype(int)
    return np.round(np.linspace(TRAIN_STEPS - 1, 0, steps)).astype(int)


def comfy_curves(scheduler: str, model_id: str, steps: int) -> Curves:
    alphas_cumprod, betas = sd_schedule()
    choice = COMFY_SAMPLERS.get(scheduler)
    visited = visited_timesteps(choice.scheduler if choice else "normal", max(int(steps), 1), alphas_cumprod)
    return Curves(scheduler, model_id, steps, alphas_cumprod, betas, visited)
