"""What the user asks for, and every way that can be wrong.

``GenerationRequest`` is a frozen dataclass: the GUI, the CLI and the gallery pass it around as
the exact recipe of an image. ``validate`` reports every problem at once, each tied to the field
it concerns, with a message a user can act on. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from desktop_app.engine.schedulers import SCHEDULERS, step_range

if TYPE_CHECKING:
    from desktop_app.engine.models import ModelInfo

MAX_SEED = 2**32 - 1
MIN_STEPS, MAX_STEPS = 1, 1000
MAX_GUIDANCE = 50.0
MAX_BATCH = 16
PREVIEW_MODES = ("latent", "vae", "off")
DDPM_VARIANCES = {"fixed_small": "β̃ₜ (posterior variance)", "fixed_large": "βₜ"}
DEFAULT_MODEL_ID = "shapes"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: ``field`` names the control it belongs to."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    model_id: str = DEFAULT_MODEL_ID
    scheduler: str = "DPM++ 2M"
    steps: int = 20
    guidance_scale: float = 7.0
    seed: int | None = None  # None: the engine picks one and records it in the result
    width: int | None = None  # None: the model's native size
    height: int | None = None
    batch_size: int = 1
    eta: float = 0.0  # DDIM only: 0 is deterministic DDIM, 1 matches DDPM's noise level
    ddpm_variance: str = "fixed_small"  # DDPM only: "fixed_small" is β̃ₜ, "fixed_large" is βₜ
    noise_seed_delta: int = 0  # A1111's "ENSD": 0 = step noise continues the seed's stream; else its own seed
    classifier_target: str = ""  # classifier guidance: class names, e.g. "red circle"; "" = off
    classifier_scale: float = 0.0
    preview: str = "latent"  # "latent" (cheap linear map), "vae" (full decode), "off"
    preview_every: int = 1  # with preview="vae": decode every N steps
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """Build a request from a dict, ignoring keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        if "prompt" not in known:
            raise ValueError("the recipe has no prompt")
        return cls(**known)

    def size_for(self, model: ModelInfo) -> tuple[int, int]:
        width = self.width if self.width is not None else model.native_size[0]
        height = self.height if self.height is not None else model.native_size[1]
        return width, height

    def validate(self, model: ModelInfo | None, scheduler_names: list[str] | None = None) -> list[Problem]:
        """Every problem with this request for ``model`` (None: the model was not found)."""
        if scheduler_names is None:
            scheduler_names = list(SCHEDULERS)
        problems: list[Problem] = []
        add = problems.append
        if model is None:
            add(Problem("model", f"no model called {self.model_id!r} was found; see `diffuse-studio models`"))
        if self.scheduler not in scheduler_names:
            add(Problem("scheduler", f"unknown scheduler {self.scheduler!r}; choose one of: {', '.join(scheduler_names)}"))
        if not isinstance(self.steps, int) or not MIN_STEPS <= self.steps <= MAX_STEPS:
            add(Problem("steps", f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, not {self.steps}"))
        if not 0 <= self.guidance_scale <= MAX_GUIDANCE:
            add(Problem("guidance_scale", f"guidance scale must be between 0 and {MAX_GUIDANCE:g}, not {self.guidance_scale:g}"))
        if not 0.0 <= self.eta <= 1.0:
            add(Problem("eta", f"η must be between 0 (deterministic DDIM) and 1 (DDPM-like), not {self.eta:g}"))
        if self.ddpm_variance not in DDPM_VARIANCES:
            add(Problem("ddpm_variance", f"DDPM variance must be one of {', '.join(DDPM_VARIANCES)}, not {self.ddpm_variance!r}"))
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= MAX_BATCH:
            add(Problem("batch_size", f"batch size must be from 1 to {MAX_BATCH}, not {self.batch_size}"))
        if self.seed is not None:
            last = self.seed + max(int(self.batch_size) if isinstance(self.batch_size, int) else 1, 1) - 1
            if not isinstance(self.seed, int) or self.seed < 0 or last > MAX_SEED:
                add(Problem("seed", f"seed must be from 0 to {MAX_SEED} (with the batch's seed + k), not {self.seed}"))
        if self.preview not in PREVIEW_MODES:
            add(Problem("preview", f"preview must be one of {', '.join(PREVIEW_MODES)}, not {self.preview!r}"))
        if not isinstance(self.preview_every, int) or self.preview_every < 1:
            add(Problem("preview_every", f"preview interval must be at least 1 step, not {self.preview_every}"))
        if self.classifier_scale < 0:
            add(Problem("classifier_scale", f"classifier scale must not be negative, not {self.classifier_scale:g}"))
        if model is not None:
            problems.extend(self._model_problems(model))
        return problems

    def _model_problems(self, model: ModelInfo) -> list[Problem]:
        problems: list[Problem] = []
        if self.scheduler in SCHEDULERS and isinstance(self.steps, int) and MIN_STEPS <= self.steps <= MAX_STEPS:
            low, high = step_range(self.scheduler, model.scheduler_config)
            if not low <= self.steps <= high:
                problems.append(Problem("steps", f"{self.scheduler} runs {low} to {high} steps on {model.name}, not {self.steps}"))
        width, height = self.size_for(model)
        factor = model.latent_factor
        for name, value in (("width", width), ("height", height)):
            if not isinstance(value, int) or value % factor:
                lower = (int(value) // factor) * factor if isinstance(value, (int, float)) else factor
                problems.append(Problem(name, f"{name} must be a multiple of {factor} for {model.name}; try {max(lower, factor)} or {max(lower, 0) + factor}"))
            elif not model.min_size <= value <= model.max_size:
                problems.append(Problem(name, f"{name} must be from {model.min_size} to {model.max_size} pixels for {model.name}, not {value}"))
        if self.classifier_target.strip():
            if not model.classifier_labels:
                problems.append(Problem("classifier_target", f"{model.name} ships no classifier, so classifier guidance is not available"))
            else:
                known = {label for labels in model.classifier_labels.values() for label in labels}
                unknown = [w for w in self.classifier_target.split() if w not in known]
                if unknown:
                    problems.append(Problem("classifier_target", f"the classifier does not know {', '.join(unknown)}; it knows: {', '.join(sorted(known))}"))
        return problems
