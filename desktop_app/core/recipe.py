"""The recipe of an image: what the user asks for, in parts, and every way each part can be wrong.

A ``Recipe`` is the exact, device-independent description of a picture: the model (with its
add-ons), the prompt, the sampling, the guidance, an optional source image, and the output (size,
batch, seed). It is what goes into an image's metadata and what "use these settings" restores.
How a job runs (device, precision, previews, fast mode…) is not part of it: that is
``desktop_app.core.options.RunOptions``, and it is never written into an image.

Each part validates itself; ``Recipe.validate`` reports every problem of every part at once, each
tied to the field it concerns (``"sampling.steps"``), with a message a user can act on.

Two dict forms exist. ``to_dict``/``from_dict`` is the nested form of the image's JSON chunk
(format 2). ``flat``/``from_flat`` is one level of named fields (``prompt``, ``steps``,
``guidance_scale``…): the form the window's controls, the gallery index and other tools' readers
use; it is lossless, and format 1 images carried exactly its older subset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from desktop_app.core.schedulers import SCHEDULERS, step_range
from desktop_app.core.text import undecodable

if TYPE_CHECKING:
    from desktop_app.core.models import ModelInfo

RECIPE_FORMAT = 2
MAX_SEED = 2**32 - 1
MIN_STEPS, MAX_STEPS = 1, 1000
MAX_GUIDANCE = 50.0
MAX_CLASSIFIER_SCALE = 100.0
MAX_BATCH = 16
MAX_ADD_ON_WEIGHT = 10.0
DDPM_VARIANCES = {"fixed_small": "β̃ₜ (posterior variance)", "fixed_large": "βₜ"}
DEFAULT_MODEL_ID = "shapes"
ADD_ON_KINDS = ("lora", "vae", "embedding")


class RecipeError(ValueError):
    """A recipe dict that cannot be read at all (not a dict, no prompt); the message says why."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe: ``field`` names the control it belongs to."""

    field: str
    message: str

    def __str__(self) -> str:
        name = {"prompt.text": "prompt", "prompt.negative": "negative prompt"}.get(self.field, self.field.rsplit(".", 1)[-1])
        return f"{name}: {self.message}"


def is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite int or float (never a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def _check_range(problems: list[Problem], name: str, value: Any, low: float, high: float, what: str) -> None:
    if not is_number(value) or not low <= value <= high:
        problems.append(Problem(name, f"{what} must be a number from {low:g} to {high:g}, not {_show(value)}"))


# ---- the parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddOn:
    """Something applied on top of the model: a LoRA with its weight, a VAE, an embedding."""

    kind: str
    name: str
    weight: float = 1.0

    def problems(self, where: str) -> list[Problem]:
        found: list[Problem] = []
        if self.kind not in ADD_ON_KINDS:
            found.append(Problem(where, f"add-on kind must be one of {', '.join(ADD_ON_KINDS)}, not {self.kind!r}"))
        if not isinstance(self.name, str) or not self.name.strip():
            found.append(Problem(where, "an add-on needs the name of its file"))
        _check_range(found, where, self.weight, -MAX_ADD_ON_WEIGHT, MAX_ADD_ON_WEIGHT, f"the weight of {self.name}")
        return found


@dataclass(frozen=True)
class ModelRef:
    id: str = DEFAULT_MODEL_ID
    add_ons: tuple[AddOn, ...] = ()

    def problems(self, model: ModelInfo | None) -> list[Problem]:
        found: list[Problem] = []
        if model is None:
            found.append(Problem("model.id", f"no model called {self.id!r} was found; see `diffuse-studio models`"))
        elif model.kind != "txt2img":
            what = {"inpaint": "an inpainting model", "refiner": "an SDXL refiner"}.get(model.kind, f"a {model.kind} model")
            found.append(Problem("model.id", f"{model.name} is {what}: it cannot start a picture from a prompt alone; "
                                             "choose a text-to-image model"))
        for k, add_on in enumerate(self.add_ons):
            found.extend(add_on.problems(f"model.add_ons.{k}"))
        return found


@dataclass(frozen=True)
class Prompt:
    text: str
    negative: str = ""

    def problems(self) -> list[Problem]:
        found = []
        for name, what, value in (("prompt.text", "prompt", self.text), ("prompt.negative", "negative prompt", self.negative)):
            if not isinstance(value, str):
                found.append(Problem(name, f"a prompt must be text, not {type(value).__name__}"))
            elif (where := undecodable(value)) is not None:  # bytes from argv or a file that are not UTF-8
                found.append(Problem(name, f"the {what} holds bytes that are not UTF-8 text (at character {where}); "
                                           "type it again, or save the file it came from as UTF-8"))
        return found


@dataclass(frozen=True)
class Sampling:
    scheduler: str = "DPM++ 2M"
    steps: int = 20
    eta: float = 0.0  # DDIM only: 0 is deterministic DDIM, 1 matches DDPM's noise level
    ddpm_variance: str = "fixed_small"  # DDPM only: "fixed_small" is β̃ₜ, "fixed_large" is βₜ
    noise_seed_delta: int = 0  # A1111's "ENSD": 0 = step noise continues the seed's stream; else its own seed

    def problems(self, model: ModelInfo | None, scheduler_names: Iterable[str]) -> list[Problem]:
        found: list[Problem] = []
        names = list(scheduler_names)
        if self.scheduler not in names:
            found.append(Problem("sampling.scheduler", f"unknown scheduler {self.scheduler!r}; choose one of: {', '.join(names)}"))
        steps_ok = is_whole(self.steps) and MIN_STEPS <= self.steps <= MAX_STEPS
        if not steps_ok:
            found.append(Problem("sampling.steps", f"steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, "
                                                   f"not {_show(self.steps)}"))
        elif model is not None and self.scheduler in SCHEDULERS:
            low, high = step_range(self.scheduler, model.scheduler_config)
            if not low <= self.steps <= high:
                found.append(Problem("sampling.steps", f"{self.scheduler} runs {low} to {high} steps on {model.name}, "
                                                       f"not {self.steps}"))
        if not is_number(self.eta) or not 0.0 <= self.eta <= 1.0:
            found.append(Problem("sampling.eta", f"η must be between 0 (deterministic DDIM) and 1 (DDPM-like), not {_show(self.eta)}"))
        if self.ddpm_variance not in DDPM_VARIANCES:
            found.append(Problem("sampling.ddpm_variance",
                                 f"DDPM variance must be one of {', '.join(DDPM_VARIANCES)}, not {self.ddpm_variance!r}"))
        if not is_whole(self.noise_seed_delta) or not 0 <= self.noise_seed_delta <= MAX_SEED:
            found.append(Problem("sampling.noise_seed_delta",
                                 f"the noise seed delta (ENSD) must be a whole number from 0 to {MAX_SEED}, "
                                 f"not {_show(self.noise_seed_delta)}"))
        return found


@dataclass(frozen=True)
class Guidance:
    scale: float = 7.0  # classifier-free guidance; 1 turns it off
    classifier_target: str = ""  # classifier guidance: class names, e.g. "red circle"; "" = off
    classifier_scale: float = 0.0

    @property
    def classifier_on(self) -> bool:
        return bool(isinstance(self.classifier_target, str) and self.classifier_target.strip()) and self.classifier_scale > 0

    def problems(self, model: ModelInfo | None) -> list[Problem]:
        found: list[Problem] = []
        _check_range(found, "guidance.scale", self.scale, 0, MAX_GUIDANCE, "the guidance scale")
        _check_range(found, "guidance.classifier_scale", self.classifier_scale, 0, MAX_CLASSIFIER_SCALE, "the classifier scale")
        if not isinstance(self.classifier_target, str):
            found.append(Problem("guidance.classifier_target", "the classifier target must be text"))
        elif self.classifier_target.strip() and model is not None:
            if not model.classifier_labels:
                found.append(Problem("guidance.classifier_target",
                                     f"{model.name} ships no classifier, so classifier guidance is not available"))
            else:
                known = {label for labels in model.classifier_labels.values() for label in labels}
                unknown = [w for w in self.classifier_target.split() if w not in known]
                if unknown:
                    found.append(Problem("guidance.classifier_target",
                                         f"the classifier does not know {', '.join(unknown)}; it knows: {', '.join(sorted(known))}"))
        return found


@dataclass(frozen=True)
class Source:
    """A picture to start from (image to image), and where to change it (inpainting)."""

    image: str  # path of the init image, kept next to the output so the recipe can be re-run
    mask: str = ""
    strength: float = 1.0  # 1: noise to the very start of the schedule; smaller keeps more of the image

    def problems(self) -> list[Problem]:
        found: list[Problem] = []
        if not isinstance(self.image, str) or not self.image:
            found.append(Problem("source.image", "image to image needs an image to start from"))
        if not isinstance(self.mask, str):
            found.append(Problem("source.mask", "the mask must be the path of an image"))
        if not is_number(self.strength) or not 0.0 < self.strength <= 1.0:
            found.append(Problem("source.strength", f"the strength must be above 0 and at most 1, not {_show(self.strength)}"))
        return found


@dataclass(frozen=True)
class Output:
    width: int | None = None  # None: the model's native size
    height: int | None = None
    batch_size: int = 1
    seed: int | None = None  # None: the backend picks one and records it; image k uses seed + k

    def size_for(self, model: ModelInfo) -> tuple[int, int]:
        width = self.width if self.width is not None else model.native_size[0]
        height = self.height if self.height is not None else model.native_size[1]
        return width, height

    def problems(self, model: ModelInfo | None) -> list[Problem]:
        found: list[Problem] = []
        batch_ok = is_whole(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH
        if not batch_ok:
            found.append(Problem("output.batch_size", f"batch size must be from 1 to {MAX_BATCH}, not {_show(self.batch_size)}"))
        if self.seed is not None:
            last = self.seed + (self.batch_size if batch_ok else 1) - 1 if is_whole(self.seed) else -1
            if not is_whole(self.seed) or self.seed < 0 or last > MAX_SEED:
                found.append(Problem("output.seed", f"seed must be from 0 to {MAX_SEED} (with the batch's seed + k), "
                                                    f"not {_show(self.seed)}"))
        if model is not None:
            found.extend(self._size_problems(model))
        return found

    def _size_problems(self, model: ModelInfo) -> list[Problem]:
        found: list[Problem] = []
        factor = model.latent_factor
        for name, value in zip(("width", "height"), self.size_for(model), strict=True):
            if not is_whole(value) or value % factor:
                lower = (int(value) // factor) * factor if is_number(value) else factor
                found.append(Problem(f"output.{name}", f"{name} must be a multiple of {factor} for {model.name}; "
                                                       f"try {max(lower, factor)} or {max(lower, 0) + factor}"))
            elif not model.min_size <= value <= model.max_size:
                found.append(Problem(f"output.{name}", f"{name} must be from {model.min_size} to {model.max_size} "
                                                       f"pixels for {model.name}, not {value}"))
        return found


# ---- the recipe --------------------------------------------------------------------------------

# flat name -> (part, field). The flat form is what the controls, the index and other tools use.
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    "prompt": ("prompt", "text"),
    "negative_prompt": ("prompt", "negative"),
    "model_id": ("model", "id"),
    "add_ons": ("model", "add_ons"),
    "scheduler": ("sampling", "scheduler"),
    "steps": ("sampling", "steps"),
    "eta": ("sampling", "eta"),
    "ddpm_variance": ("sampling", "ddpm_variance"),
    "noise_seed_delta": ("sampling", "noise_seed_delta"),
    "guidance_scale": ("guidance", "scale"),
    "classifier_target": ("guidance", "classifier_target"),
    "classifier_scale": ("guidance", "classifier_scale"),
    "width": ("output", "width"),
    "height": ("output", "height"),
    "batch_size": ("output", "batch_size"),
    "seed": ("output", "seed"),
}
_PART_TYPES = {"model": ModelRef, "sampling": Sampling, "guidance": Guidance, "output": Output}


@dataclass(frozen=True)
class Recipe:
    prompt: Prompt
    model: ModelRef = ModelRef()
    sampling: Sampling = Sampling()
    guidance: Guidance = Guidance()
    output: Output = Output()
    source: Source | None = None

    # ---- building ------------------------------------------------------------------------------
    @classmethod
    def of(cls, prompt: str, **flat: Any) -> Recipe:
        """A recipe from flat field names: ``Recipe.of("a cat", steps=30, seed=1)``."""
        return cls(Prompt(prompt)).with_(**flat)

    def with_(self, **flat: Any) -> Recipe:
        """A copy with some flat fields changed (``source`` takes a ``Source`` or None)."""
        parts: dict[str, dict[str, Any]] = {}
        changes: dict[str, Any] = {}
        for name, value in flat.items():
            if name == "source":
                changes["source"] = value
                continue
            if name not in FLAT_FIELDS:
                raise TypeError(f"a recipe has no field {name!r}")
            part, attribute = FLAT_FIELDS[name]
            if name == "add_ons":
                value = tuple(value)
            parts.setdefault(part, {})[attribute] = value
        for part, values in parts.items():
            changes[part] = dataclasses.replace(getattr(self, part), **values)
        return dataclasses.replace(self, **changes)

    def flat(self) -> dict[str, Any]:
        out = {name: getattr(getattr(self, part), attribute) for name, (part, attribute) in FLAT_FIELDS.items()}
        out["add_ons"] = [dataclasses.asdict(a) for a in self.model.add_ons]
        out["source"] = dataclasses.asdict(self.source) if self.source is not None else None
        return out

    @classmethod
    def from_flat(cls, data: dict[str, Any]) -> Recipe:
        """From the flat form (also a format-1 ``request``); unknown keys are ignored."""
        if not isinstance(data, dict):
            raise RecipeError("the recipe is not a set of named fields")
        if "prompt" not in data:
            raise RecipeError("the recipe has no prompt")
        known = {k: v for k, v in data.items() if k in FLAT_FIELDS and k != "prompt"}
        if "add_ons" in known:
            known["add_ons"] = _add_ons(known["add_ons"])
        recipe = cls(Prompt(data["prompt"])).with_(**known)
        if data.get("source") is not None:
            recipe = dataclasses.replace(recipe, source=_source(data["source"]))
        return recipe

    # ---- the image's JSON (format 2) ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        """From ``to_dict``'s nested form; unknown keys are ignored, values are checked by ``validate``."""
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), dict) or "text" not in data["prompt"]:
            raise RecipeError("the recipe has no prompt")
        prompt = data["prompt"]
        parts: dict[str, Any] = {"prompt": Prompt(prompt["text"], prompt.get("negative", ""))}
        for name, part_type in _PART_TYPES.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise RecipeError(f"the recipe's {name!r} part is not a set of named fields")
            names = {f.name for f in dataclasses.fields(part_type)}
            values = {k: v for k, v in values.items() if k in names}
            if name == "model" and "add_ons" in values:
                values["add_ons"] = _add_ons(values["add_ons"])
            parts[name] = part_type(**values)
        if data.get("source") is not None:
            parts["source"] = _source(data["source"])
        return cls(**parts)

    # ---- checking -----------------------------------------------------------------------------
    def validate(self, model: ModelInfo | None, scheduler_names: Iterable[str] | None = None) -> list[Problem]:
        """Every problem with this recipe for ``model`` (None: the model was not found)."""
        names = list(SCHEDULERS) if scheduler_names is None else list(scheduler_names)
        problems = self.model.problems(model)
        problems += self.prompt.problems()
        problems += self.sampling.problems(model, names)
        problems += self.guidance.problems(model)
        problems += self.output.problems(model)
        if self.source is not None:
            problems += self.source.problems()
        return problems

    def for_image(self, index: int) -> Recipe:
        """The recipe of image ``index`` of this batch: its own seed (seed + index), batch size 1."""
        seed = None if self.output.seed is None else self.output.seed + index
        return self.with_(seed=seed, batch_size=1)


MAX_PIXELS = 16384  # a width or height beyond any model's reach, whatever the model


def value_problem(name: str, value: Any) -> str | None:
    """What is wrong with one flat field's value on its own (no model known), or None."""
    if name not in FLAT_FIELDS or name in ("add_ons", "model_id"):
        return None
    if name in ("prompt", "negative_prompt"):  # any text can be shown (a control drops what is not text)
        return None if isinstance(value, str) else f"a prompt must be text, not {type(value).__name__}"
    if name in ("width", "height"):
        if value is None or (is_whole(value) and 1 <= value <= MAX_PIXELS):
            return None
        return f"{name} must be a whole number of pixels from 1 to {MAX_PIXELS}, not {_show(value)}"
    if isinstance(value, (list, dict, tuple, set)):
        return f"{name} must be a single value, not {_show(value)}"
    part, attribute = FLAT_FIELDS[name]
    try:
        problems = Recipe.of("", **{name: value}).validate(None)
    except (TypeError, ValueError):
        return f"{name} cannot be {_show(value)}"
    found = [p.message for p in problems if p.field == f"{part}.{attribute}"]
    return found[0] if found else None


def usable_values(flat: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``flat`` with each value that fails its own check left out, and the names left out: what a
    damaged recipe (an old settings file, another tool's image) can still give."""
    usable, rejected = {}, []
    for name, value in flat.items():
        if value_problem(name, value) is None:
            usable[name] = value
        else:
            rejected.append(name)
    return usable, rejected


def _add_ons(value: Any) -> tuple[AddOn, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(a, (dict, AddOn)) for a in value):
        raise RecipeError("the recipe's add-ons are not a list of named fields")
    names = {f.name for f in dataclasses.fields(AddOn)}
    try:
        return tuple(a if isinstance(a, AddOn) else AddOn(**{k: v for k, v in a.items() if k in names}) for a in value)
    except TypeError:
        raise RecipeError("an add-on of the recipe has no kind or no name") from None


def _source(value: Any) -> Source:
    if isinstance(value, Source):
        return value
    if not isinstance(value, dict) or "image" not in value:
        raise RecipeError("the recipe's source has no image")
    names = {f.name for f in dataclasses.fields(Source)}
    return Source(**{k: v for k, v in value.items() if k in names})
