"""The Qt-free inference engine.

Importing this package is cheap: torch and diffusers load only when ``Engine`` (or another
torch-backed name) is first used, so the GUI can show its window before torch is imported.
"""

from __future__ import annotations

from desktop_app.engine.models import ModelInfo, ModelLoadError, discover, inspect_model, resolve_model
from desktop_app.engine.request import GenerationRequest, Problem
from desktop_app.engine.schedulers import SCHEDULERS, scheduler_names

_LAZY = {
    "Engine": "desktop_app.engine.engine",
    "GenerationResult": "desktop_app.engine.generate",
    "StepUpdate": "desktop_app.engine.generate",
    "InvalidRequest": "desktop_app.engine.generate",
    "DeviceError": "desktop_app.engine.device",
}

__all__ = [
    "GenerationRequest", "ModelInfo", "ModelLoadError", "Problem", "SCHEDULERS",
    "discover", "inspect_model", "resolve_model", "scheduler_names", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
