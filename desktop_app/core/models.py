"""What a model is, as every layer sees it: a description, an error naming the file at fault, and
the list a backend offers. Torch-free; how models are found and loaded is each backend's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What a model can make: a plain text-to-image model, a 9-channel inpainting model, an SDXL refiner
# (a second pass over the end of the schedule). Only "txt2img" models start a picture from noise.
MODEL_KINDS = ("txt2img", "inpaint", "refiner")


class ModelLoadError(Exception):
    """A model that cannot be used; ``path`` is the file at fault (or the model's name on a server)."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    path: Path
    family: str  # "SD 1.x", "SD 2.x", "SDXL", "built-in", "custom"
    pipeline_class: str
    native_size: tuple[int, int]
    latent_factor: int
    latent_channels: int
    scheduler_config: dict[str, Any] = field(repr=False)
    preview_factors: dict[str, list] | None = field(default=None, repr=False)
    classifier_labels: dict[str, list[str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    kind: str = "txt2img"
    vocabulary: tuple[str, ...] = ()  # the words a model was trained on, when it declares them
    location: str = ""  # where it runs: "" is this computer, else a server's name

    @property
    def min_size(self) -> int:
        return self.latent_factor * 8

    @property
    def max_size(self) -> int:
        return max(self.native_size) * 4

    @property
    def has_classifier(self) -> bool:
        return bool(self.classifier_labels)

    def describe(self) -> str:
        w, h = self.native_size
        return f"{self.name} ({self.family}, {w}×{h})"


@dataclass
class ModelCatalog:
    """The models a backend offers, and the ones it found but cannot use (each with its reason)."""

    models: list[ModelInfo] = field(default_factory=list)
    errors: list[ModelLoadError] = field(default_factory=list)

    def find(self, model_id: str) -> ModelInfo | None:
        return next((m for m in self.models if m.id == model_id), None)
