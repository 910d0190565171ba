"""What every backend tells its client, as small immutable objects.

A job's events come in this order: ``Started``, then ``Progress`` (each step, maybe with a preview
frame), then one ``ImageMade`` per picture, then exactly one terminal event: ``Finished``,
``Failed`` or ``Cancelled``. A job cancelled before it started gets only ``Cancelled``. Events not
tied to a job (``Status``, ``Curves``, ``ModelsChanged``, ``ModelHashed``) may come at any time.

Previews are numpy arrays and pictures are PIL images: plain data, no Qt, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from desktop_app.core.models import ModelCatalog, ModelInfo
    from desktop_app.core.recipe import Recipe

# Why a job failed, so a front end can answer in kind (the command line's exit status, a hint).
# "prediction": an SD 2.x file that does not say whether it predicts ε or v; the front end asks the
# user once (``core.model_choices.remember_prediction``) and runs the job again.
FAILURE_KINDS = ("invalid", "model", "prediction", "device", "memory", "server", "internal")


@dataclass(frozen=True)
class Status:
    """The backend as a whole: starting, loading a model, ready, compiling, unavailable."""

    state: str  # "starting" | "loading" | "ready" | "busy" | "compiling" | "error"
    text: str
    placement: str = ""  # where jobs run, e.g. "CPU, fp32" (once known)
    accelerators: tuple[str, ...] | None = None  # the GPUs this backend could use ("cuda", "mps"); None: not known


@dataclass(frozen=True)
class JobEvent:
    job_id: str


@dataclass(frozen=True)
class Started(JobEvent):
    pass


@dataclass(frozen=True)
class Progress(JobEvent):
    step: int  # steps done so far (0 with phase "warm-up": before the first)
    total: int
    elapsed: float  # seconds of denoising so far (a compile warm-up not counted)
    its_per_sec: float
    preview: np.ndarray | None = field(default=None, compare=False)  # (H, W, 3) uint8, a batch tiled
    phase: str = "denoise"  # "warm-up": fast mode compiles the UNet before the next step

    @property
    def eta_seconds(self) -> float:
        return (self.total - self.step) / self.its_per_sec if self.its_per_sec > 0 else float("nan")


@dataclass(frozen=True)
class GeneratedImage:
    """One finished picture, with everything needed to save it with its exact recipe."""

    image: Image.Image = field(compare=False)
    recipe: Recipe  # the resolved recipe of the whole batch (seed and size filled in)
    index: int  # the picture's place in the batch: its seed is recipe seed + index
    model: ModelInfo | None = None
    model_hash: str = ""  # "" while the backend is still hashing the model file
    run: dict[str, Any] = field(default_factory=dict, compare=False)  # device, precision, timings, server…
    extra_chunks: dict[str, str] = field(default_factory=dict, compare=False)  # e.g. ComfyUI's "prompt" graph
    lora_hashes: dict[str, str] = field(default_factory=dict, compare=False)  # LoRA name -> A1111's short hash
    ti_hashes: dict[str, str] = field(default_factory=dict, compare=False)  # embedding name -> its short hash

    @property
    def seed(self) -> int | None:
        return self.recipe.for_image(self.index).output.seed


@dataclass(frozen=True)
class ImageMade(JobEvent):
    image: GeneratedImage


@dataclass(frozen=True)
class JobSummary:
    recipe: Recipe  # resolved: seed and size filled in
    seeds: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()  # about the recipe (words beyond the prompt limit…)
    notes: tuple[str, ...] = ()  # what the backend changed to make it work (an fp32 re-decode…)
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    device: str = ""
    precision: str = ""
    saved: tuple[str, ...] = ()  # filled in by whoever saved the pictures ("" for one that failed)


@dataclass(frozen=True)
class Finished(JobEvent):
    summary: JobSummary


@dataclass(frozen=True)
class Failed(JobEvent):
    message: str  # for the user: what went wrong and what to do
    kind: str = "internal"  # one of FAILURE_KINDS


@dataclass(frozen=True)
class Cancelled(JobEvent):
    pass


TERMINAL = (Finished, Failed, Cancelled)


@dataclass(frozen=True)
class Curves:
    """The noise schedule of a scheduler on a model, for the plot: ᾱₜ, βₜ and the visited timesteps."""

    scheduler: str
    model_id: str
    steps: int
    alphas_cumprod: np.ndarray = field(compare=False)
    betas: np.ndarray = field(compare=False)
    visited: np.ndarray = field(compare=False)


@dataclass(frozen=True)
class ModelsChanged:
    catalog: ModelCatalog


@dataclass(frozen=True)
class ModelHashing:
    """Progress of a model file's hash, computed in the background (bytes done of total)."""

    model_id: str
    path: str
    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass(frozen=True)
class ModelHashed:
    """The A1111 "Model hash" of a model file (the first 10 hex digits of its SHA-256), computed in
    the background after it was first loaded; ``sha256`` is the whole digest (civitai finds it)."""

    model_id: str
    path: str
    digest: str
    sha256: str = ""


Event = (Status | Started | Progress | ImageMade | Finished | Failed | Cancelled | Curves | ModelsChanged | ModelHashing
         | ModelHashed)
