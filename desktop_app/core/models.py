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
    source: str = ""  # where it was found: "AUTOMATIC1111 /home/me/webui", or the model folder it is in
    size: int = 0  # bytes on disk (a folder: its weights files)
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


# What a model can carry on top: a LoRA (or LoCon) with a weight, a VAE in place of its own, a
# textual-inversion embedding used by its name in the prompt.
ADD_ON_LABELS = {"lora": "LoRA", "vae": "VAE", "embedding": "Embedding"}
SD_FAMILIES = ("SD 1.x", "SD 2.x", "SDXL")


@dataclass(frozen=True)
class AddOnInfo:
    """A LoRA, VAE or embedding file a backend offers. ``name`` is what a recipe and a prompt call it
    (the file name without its suffix, as AUTOMATIC1111 does); ``family`` is None when the file does
    not tell (a VAE's shapes are the same for every family)."""

    kind: str  # "lora" | "vae" | "embedding"
    name: str
    family: str | None
    path: Path
    size: int = 0
    variant: str = ""  # LoRA: "lora" / "locon" / "loha" / "lokr"; VAE: "ldm" / "diffusers"
    source: str = ""  # where it was found, as ModelInfo.source

    def fits(self, family: str) -> bool:
        """Usable with a model of ``family`` as far as the listing can tell: an add-on or a model whose
        family is not one of Stable Diffusion's (a custom model) may fit; its header decides on use."""
        return self.family is None or family not in SD_FAMILIES or self.family == family

    def describe(self) -> str:
        return f"{self.name} ({ADD_ON_LABELS.get(self.kind, self.kind)}, {self.family or 'any family'})"


@dataclass
class ModelCatalog:
    """The models a backend offers, and the ones it found but cannot use (each with its reason).

    ``add_ons``: the LoRAs, VAEs and embeddings it offers; ``offline``: folders it was told to look in
    that are not there now (an unplugged drive), kept so they come back when they do; ``hashes``: the
    SHA-256 of the files hashed before (a LoRA's: of its tensors, as A1111's "Lora hashes"), by path.
    """

    models: list[ModelInfo] = field(default_factory=list)
    errors: list[ModelLoadError] = field(default_factory=list)
    add_ons: list[AddOnInfo] = field(default_factory=list)
    offline: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)  # str(path) -> SHA-256, where computed already

    def find(self, model_id: str) -> ModelInfo | None:
        return next((m for m in self.models if m.id == model_id), None)

    def find_add_on(self, kind: str, name: str) -> AddOnInfo | None:
        return next((a for a in self.add_ons if a.kind == kind and a.name == name), None)

    def add_ons_of(self, kind: str, family: str | None = None) -> list[AddOnInfo]:
        """The add-ons of ``kind``; with ``family``, only those that fit it."""
        return [a for a in self.add_ons if a.kind == kind and (family is None or a.fits(family))]
