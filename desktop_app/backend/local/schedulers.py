"""Building a diffusers scheduler from one of the named specs, and its curves for the plot.

A scheduler is always built from the model's own scheduler config (its β schedule, prediction
type and timestep spacing), with only the options the name implies changed.
"""

from __future__ import annotations

from typing import Any

from desktop_app.core.schedulers import get_spec

_CLASS_CONFIG_KEYS_TO_DROP = ("_class_name", "_diffusers_version")


def build_scheduler(name: str, base_config: dict[str, Any], *, ddpm_variance: str = "fixed_small"):
    """A diffusers scheduler for ``name``, from the model's own scheduler config."""
    import diffusers

    spec = get_spec(name)
    config = {k: v for k, v in dict(base_config).items() if k not in _CLASS_CONFIG_KEYS_TO_DROP}
    config.update(spec.options)
    if spec.takes_variance:
        config["variance_type"] = ddpm_variance
    cls = getattr(diffusers, spec.class_name)
    return cls.from_config(config)


def schedule_curves(name: str, base_config: dict[str, Any], steps: int):
    """ᾱₜ and βₜ over the training timesteps, and the timesteps a run of ``steps`` visits.

    Returns (alphas_cumprod, betas, visited) as numpy arrays, for the window's schedule plot.
    """
    import numpy as np

    scheduler = build_scheduler(name, base_config)
    scheduler.set_timesteps(steps)
    alphas_cumprod = np.asarray(scheduler.alphas_cumprod, dtype=np.float64)
    betas = np.asarray(scheduler.betas, dtype=np.float64)
    visited = np.asarray(scheduler.timesteps, dtype=np.float64)
    return alphas_cumprod, betas, visited
