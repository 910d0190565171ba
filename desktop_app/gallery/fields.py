"""Which of an image's recipe fields mean something for it, for the details pane and the manifest.

A recipe always carries every field (η, DDPM's variance, the classifier's target and scale…), but
most only apply to some images: η only to a scheduler that takes it, the variance only to DDPM,
the classifier's scale only when classifier guidance was on. Listing the others makes a reader
think they did something.
"""

from __future__ import annotations

from typing import Any

from desktop_app.core.schedulers import SCHEDULERS


def applicable_fields(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` (a flat recipe) without the fields that had no effect on this image."""
    shown = dict(request)
    spec = SCHEDULERS.get(str(request.get("scheduler", "")))
    if spec is not None:  # another tool's sampler name: keep what it says
        if not spec.takes_eta:
            shown.pop("eta", None)
        if not spec.takes_variance:
            shown.pop("ddpm_variance", None)
    if not str(request.get("classifier_target") or "").strip():
        shown.pop("classifier_target", None)
        shown.pop("classifier_scale", None)
    for name in ("noise_seed_delta",):
        if not request.get(name):
            shown.pop(name, None)
    for name in ("add_ons", "source"):
        if not request.get(name):
            shown.pop(name, None)
    return shown
